package msrp

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/go-msrp/msrp/internal/leakcheck"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func uriOf(t *testing.T, s string) URI {
	t.Helper()
	u, err := ParseURI(s)
	require.NoError(t, err)
	return u
}

func TestCheckIncomingSENDChunk(t *testing.T) {
	local := "msrp://10.0.0.1:2855/mine;tcp"
	relay := "msrps://relay.example.com:2855/r1;tcp"
	peer := "msrp://10.0.0.2:2855/theirs;tcp"
	tests := []struct {
		name      string
		relays    []string
		to, from  string
		sessmatch bool
		code      int
	}{
		{name: "direct ok", to: local, from: peer},
		{name: "host case and default port", to: "msrp://10.0.0.1/mine;TCP", from: peer},
		{name: "missing To-Path", from: peer, code: 400},
		{name: "missing From-Path", to: local, code: 400},
		{name: "malformed To-Path", to: "http://x", from: peer, code: 400},
		{name: "wrong session", to: "msrp://10.0.0.1:2855/other;tcp", from: peer, code: 481},
		{name: "To-Path with extra hop", to: relay + " " + local, from: peer, code: 481},
		{name: "wrong From-Path", to: local, from: "msrp://10.0.0.3:2855/theirs;tcp", code: 481},
		{name: "scheme differs", to: local, from: "msrps://10.0.0.2:2855/theirs;tcp", code: 481},
		{name: "via our relay", relays: []string{relay}, to: local, from: relay + " " + peer},
		{name: "relay missing from From-Path", relays: []string{relay}, to: local, from: peer, code: 481},
		{name: "sessmatch ignores rewritten hosts", sessmatch: true,
			to: "msrp://192.168.1.1:9/mine;tcp", from: "msrp://172.16.0.1:7/theirs;tcp"},
		{name: "sessmatch through a relay", sessmatch: true, relays: []string{relay},
			to: local, from: "msrp://alg.example.net/x;tcp msrp://172.16.0.1:7/theirs;tcp"},
		{name: "sessmatch wrong To session", sessmatch: true, to: "msrp://10.0.0.1/other;tcp", from: peer, code: 481},
		{name: "sessmatch wrong From session", sessmatch: true, to: local, from: "msrp://10.0.0.2/other;tcp", code: 481},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := NewMSRPTransport(nil, uriOf(t, local))
			tr.UseSessmatch = tc.sessmatch
			var relays []URI
			for _, r := range tc.relays {
				relays = append(relays, uriOf(t, r))
			}
			tr.SetLocalPath(relays)
			tr.SetRemotePath([]URI{uriOf(t, peer)})
			c := &Chunk{TransactionID: "abcd1234", Method: "SEND"}
			if tc.to != "" {
				c.Headers.Add(HeaderToPath, tc.to)
			}
			if tc.from != "" {
				c.Headers.Add(HeaderFromPath, tc.from)
			}
			err := tr.CheckIncomingSENDChunk(c)
			if tc.code == 0 {
				assert.NoError(t, err)
				return
			}
			var te *TransactionError
			require.ErrorAs(t, err, &te)
			assert.Equal(t, tc.code, te.Code)
		})
	}
}

func TestMakeRequests(t *testing.T) {
	tr := NewMSRPTransport(nil, uriOf(t, "msrp://10.0.0.1:2855/mine;tcp"))
	tr.SetLocalPath([]URI{uriOf(t, "msrps://relay:2855/r;tcp")})
	tr.SetRemotePath([]URI{uriOf(t, "msrp://10.0.0.2:2855/theirs;tcp")})
	assert.Equal(t, "msrps://relay:2855/r;tcp msrp://10.0.0.1:2855/mine;tcp", FormatPath(tr.FullLocalPath()))

	req := tr.MakeRequest("NICKNAME")
	assert.Equal(t, "msrps://relay:2855/r;tcp msrp://10.0.0.2:2855/theirs;tcp", req.Headers.Get(HeaderToPath))
	assert.Equal(t, "msrp://10.0.0.1:2855/mine;tcp", req.Headers.Get(HeaderFromPath))

	tests := []struct {
		name         string
		mid          string
		size         int
		start, total int64
		wantRange    string
		wantFlag     byte
	}{
		{"empty binding SEND", "", 0, 0, 0, "1-0/0", FlagEnd},
		{"whole small message", "m1234567", 5, 1, 0, "1-5/5", FlagEnd},
		{"first of several", "m1234567", 100, 1, 300, "1-100/300", FlagContinued},
		{"last of several", "m1234567", 100, 201, 300, "201-300/300", FlagEnd},
		{"unknown total", "m1234567", 100, 1, Unknown, "1-100/*", FlagContinued},
		{"large chunk is interruptible", "m1234567", 3000, 1, 0, "1-*/3000", FlagEnd},
		{"2048 is not yet interruptible", "m1234567", 2048, 1, 0, "1-2048/2048", FlagEnd},
	}
	for _, tc := range tests {
		c := tr.MakeSendRequest(tc.mid, make([]byte, tc.size), tc.start, tc.total)
		assert.Equal(t, tc.wantRange, c.Headers.Get(HeaderByteRange), tc.name)
		assert.Equal(t, tc.wantFlag, c.ContFlag, tc.name)
		mid, err := c.MessageID()
		require.NoError(t, err, tc.name)
		if tc.mid != "" {
			assert.Equal(t, tc.mid, mid)
		}
		_, err = c.ByteRange()
		require.NoError(t, err, tc.name)
	}
}

// pipePair returns transports on the two ends of a loopback TCP connection,
// with paths that make each accept the other's requests.
func pipePair(t *testing.T) (*MSRPTransport, *MSRPTransport) {
	a, b := tcpPair(t)
	aURI := URI{Host: "127.0.0.1", Port: 1, SessionID: "aaaa", Transport: "tcp"}
	bURI := URI{Host: "127.0.0.1", Port: 2, SessionID: "bbbb", Transport: "tcp"}
	ta, tb := NewMSRPTransport(a, aURI), NewMSRPTransport(b, bURI)
	ta.SetRemotePath([]URI{bURI})
	tb.SetRemotePath([]URI{aURI})
	t.Cleanup(func() { ta.Close(); tb.Close() })
	return ta, tb
}

func TestReadEOF(t *testing.T) {
	leakcheck.Check(t)
	t.Run("at a chunk boundary", func(t *testing.T) {
		a, b := pipePair(t)
		require.NoError(t, a.WriteChunk(context.Background(), a.MakeSendRequest("", nil, 1, 0)))
		require.NoError(t, a.Close())
		_, err := b.ReadChunk(context.Background())
		require.NoError(t, err)
		_, err = b.ReadChunk(context.Background())
		assert.Equal(t, io.EOF, err)
	})
	t.Run("mid-chunk", func(t *testing.T) {
		a, b := pipePair(t)
		raw, err := a.MakeSendRequest("", nil, 1, 0).Encode(nil)
		require.NoError(t, err)
		_, err = a.netConn().Write(raw[:len(raw)-4])
		require.NoError(t, err)
		require.NoError(t, a.Close())
		_, err = b.ReadChunk(context.Background())
		assert.Equal(t, io.ErrUnexpectedEOF, err)
	})
}

func TestWriteRefusalKeepsTheConnection(t *testing.T) {
	a, b := pipePair(t)
	bad := a.MakeSendRequest("", []byte("x"), 1, 0)
	bad.Headers.Add("X-Inject", "a\r\nTo-Path: evil")
	err := a.WriteChunk(context.Background(), bad)
	assert.ErrorIs(t, err, ErrInvalidChunk)
	exchange(t, a, b)
}

func TestWriteErrorIsSticky(t *testing.T) {
	a, b := pipePair(t)
	b.Close()
	a.netConn().(*net.TCPConn).SetLinger(0)
	var err error
	for range 100 { // the first writes may still land in the socket buffer
		big := a.MakeSendRequest("", bytes.Repeat([]byte("x"), 60000), 1, 0)
		big.Headers.Set(HeaderContentType, "text/plain")
		if err = a.WriteChunk(context.Background(), big); err != nil {
			break
		}
		time.Sleep(time.Millisecond)
	}
	require.Error(t, err)
	err2 := a.WriteChunk(context.Background(), a.MakeSendRequest("", nil, 1, 0))
	assert.Equal(t, err, err2)
}

func TestOversizedChunkThroughTransport(t *testing.T) {
	a, b := pipePair(t)
	b.SetLimits(Limits{MaxChunkSize: 8192})
	big := a.MakeSendRequest("", bytes.Repeat([]byte("y"), 100000), 1, 0)
	big.Headers.Set(HeaderContentType, "application/octet-stream")
	go a.WriteChunk(context.Background(), big)
	_, err := b.ReadChunk(context.Background())
	var pe *ChunkParseError
	require.ErrorAs(t, err, &pe)
	assert.ErrorIs(t, err, ErrChunkTooLarge)
	assert.Equal(t, big.TransactionID, pe.Chunk.TransactionID)
	require.NoError(t, b.WriteResponse(context.Background(), pe.Chunk, 413, ""))
	resp, err := a.ReadChunk(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 413, resp.Code)
	exchange(t, a, b) // the rest of the big chunk was skipped; the connection works
}

func TestIdleTransportHoldsNoBulkBuffer(t *testing.T) {
	a, b := pipePair(t)
	big := a.MakeSendRequest("", bytes.Repeat([]byte("z"), 200000), 1, 0)
	big.Headers.Set(HeaderContentType, "application/octet-stream")
	go a.WriteChunk(context.Background(), big)
	c, err := b.ReadChunk(context.Background())
	require.NoError(t, err)
	assert.Len(t, c.Data, 200000)
	assert.Nil(t, b.bulk, "the bulk read buffer went back to the pool")
	assert.Nil(t, b.parser.acc, "and the body buffer too")
}

// recordHandler keeps log records for inspection.
type recordHandler struct {
	level   slog.Level
	records []slog.Record
}

func (h *recordHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }
func (h *recordHandler) Handle(_ context.Context, r slog.Record) error {
	h.records = append(h.records, r)
	return nil
}
func (h *recordHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordHandler) WithGroup(string) slog.Handler      { return h }

func (h *recordHandler) dump() string {
	var b strings.Builder
	for _, r := range h.records {
		b.WriteString(r.Message)
		r.Attrs(func(a slog.Attr) bool {
			b.WriteString(" " + a.Key + "=" + a.Value.String())
			return true
		})
		b.WriteString("\n")
	}
	return b.String()
}

func TestTrafficLog(t *testing.T) {
	a, b := pipePair(t)
	h := &recordHandler{}
	a.Logger = &Logger{Slog: slog.New(h), Prefix: "[s1] "}
	req := a.MakeSendRequest("", []byte("secret body"), 1, 0)
	req.Headers.Set(HeaderContentType, "text/plain")
	req.Headers.Set(HeaderAuthorization, `Digest username="alice", response="6629fae49393a05397450978507c4ef1"`)
	require.NoError(t, a.WriteChunk(context.Background(), req))
	_, err := b.ReadChunk(context.Background())
	require.NoError(t, err)
	out := h.dump()
	assert.Contains(t, out, "[s1] sent chunk")
	assert.Contains(t, out, "tid="+req.TransactionID)
	assert.Contains(t, out, "method=SEND")
	assert.Contains(t, out, "bytes=11")
	assert.NotContains(t, out, "secret body", "no bodies without LogTraffic")

	h.records = nil
	a.Logger.LogTraffic = true
	require.NoError(t, a.WriteChunk(context.Background(), req))
	out = h.dump()
	assert.Contains(t, out, "secret body")
	assert.Contains(t, out, "Authorization: [redacted]")
	assert.NotContains(t, out, "6629fae4", "credentials never logged")
	_, err = b.ReadChunk(context.Background())
	require.NoError(t, err)

	// Illegal data.
	b.Logger = &Logger{Slog: slog.New(h), LogTraffic: true}
	h.records = nil
	_, err = a.netConn().Write([]byte("GARBAGE LINE\r\n"))
	require.NoError(t, err)
	_, err = b.ReadChunk(context.Background())
	assert.ErrorIs(t, err, ErrBadStartLine)
	assert.Contains(t, h.dump(), "illegal data")
	assert.Contains(t, h.dump(), "GARBAGE LINE")

	// Quiet when the handler is off for the level, and with a nil logger.
	h.records = nil
	h.level = slog.LevelWarn
	require.NoError(t, a.WriteChunk(context.Background(), req))
	assert.Empty(t, h.records)
	var nilLogger *Logger
	nilLogger.sentChunk(req, a)
	nilLogger.event("x")
	(&Logger{}).receivedChunk(req, nil)
}

func TestStickyReadError(t *testing.T) {
	a, b := pipePair(t)
	require.NoError(t, b.Close())
	_, err := b.ReadChunk(context.Background())
	require.Error(t, err)
	assert.True(t, errors.Is(err, net.ErrClosed), "%v", err)
	_, err2 := b.ReadChunk(context.Background())
	assert.Equal(t, err, err2)
	_ = a
}
