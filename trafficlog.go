package msrp

import (
	"context"
	"log/slog"
	"strings"
)

// Logger is the traffic log of msrplib's trafficlog module, on log/slog.
//
// A nil *Logger, or one with a nil Slog, logs nothing: the library is quiet
// unless asked. Chunks are logged as one record each, at Level, with the
// direction, addresses, transaction id, method or status and body size; the
// raw chunk (start line, headers, body) is added only when LogTraffic is set.
// Connection events (connecting, listening, closed) are logged at Level
// too; a connection an acceptor or a server turns away is a "refused
// connection" record with "from" and "error" attributes.
// Authorization header values are never logged, at any level.
//
// A disabled logger costs one nil check or one Handler.Enabled call per
// chunk; nothing is formatted.
type Logger struct {
	Slog       *slog.Logger
	Prefix     string     // added to every message, e.g. the session it belongs to
	LogTraffic bool       // include raw chunks, bodies too
	Level      slog.Level // level of every record; the zero value is slog.LevelInfo
}

func (l *Logger) enabled() bool {
	return l != nil && l.Slog != nil && l.Slog.Enabled(context.Background(), l.Level)
}

// receivedChunk logs a chunk read from the transport.
func (l *Logger) receivedChunk(c *Chunk, t *MSRPTransport) {
	if l.enabled() {
		l.chunk("received chunk", "<--", c, t)
	}
}

// sentChunk logs a chunk written to the transport.
func (l *Logger) sentChunk(c *Chunk, t *MSRPTransport) {
	if l.enabled() {
		l.chunk("sent chunk", "-->", c, t)
	}
}

// receivedIllegalData logs input that could not be parsed as a chunk.
func (l *Logger) receivedIllegalData(data []byte, err error, t *MSRPTransport) {
	if !l.enabled() {
		return
	}
	attrs := []slog.Attr{slog.String("error", err.Error())}
	attrs = append(attrs, addrAttrs("<--", t)...)
	if l.LogTraffic {
		attrs = append(attrs, slog.String("data", string(data)))
	}
	l.Slog.LogAttrs(context.Background(), l.Level, l.Prefix+"illegal data", attrs...)
}

// event logs a connection event with optional attributes.
func (l *Logger) event(msg string, args ...any) {
	if l.enabled() {
		l.Slog.Log(context.Background(), l.Level, l.Prefix+msg, args...)
	}
}

func (l *Logger) chunk(msg, dir string, c *Chunk, t *MSRPTransport) {
	attrs := make([]slog.Attr, 0, 8)
	attrs = append(attrs, addrAttrs(dir, t)...)
	attrs = append(attrs, slog.String("tid", c.TransactionID))
	if c.IsRequest() {
		attrs = append(attrs, slog.String("method", c.Method))
	} else {
		attrs = append(attrs, slog.Int("code", c.Code))
	}
	attrs = append(attrs, slog.Int("bytes", len(c.Data)), slog.String("flag", string(rune(c.flag()))))
	if l.LogTraffic {
		attrs = append(attrs, slog.String("raw", redactedWire(c)))
	}
	l.Slog.LogAttrs(context.Background(), l.Level, l.Prefix+msg, attrs...)
}

func addrAttrs(dir string, t *MSRPTransport) []slog.Attr {
	if t == nil {
		return []slog.Attr{slog.String("dir", dir)}
	}
	return []slog.Attr{
		slog.String("dir", dir),
		slog.String("local", t.LocalAddr().String()),
		slog.String("remote", t.RemoteAddr().String()),
	}
}

// redactedWire renders the chunk as on the wire, without credentials.
func redactedWire(c *Chunk) string {
	safe := *c
	safe.Headers = make(Header, len(c.Headers))
	for i, f := range c.Headers {
		if strings.EqualFold(f.Name, HeaderAuthorization) {
			f.Value = "[redacted]"
		}
		safe.Headers[i] = f
	}
	raw, err := safe.Encode(nil)
	if err != nil {
		return safe.String() + " [cannot be encoded: " + err.Error() + "]"
	}
	return string(raw)
}
