package msrp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// ErrTimeout is matched by every timeout this package reports. Each specific
// timeout below also matches context.DeadlineExceeded, so callers that only
// know about contexts still recognise it:
//
//	if errors.Is(err, msrp.ErrTimeout) { ... }
var ErrTimeout = errors.New("msrp: timeout")

// Timeouts of connection set-up, named after msrplib's exceptions
// (MSRPConnectTimeout, MSRPRelayConnectTimeout, MSRPIncomingConnectTimeout,
// MSRPBindSessionTimeout, MSRPAuthTimeout). Each matches ErrTimeout and
// context.DeadlineExceeded with errors.Is, and has a Timeout method returning
// true, like net.Error.
var (
	ErrConnectTimeout         error = &timeoutError{op: "connect"}
	ErrRelayConnectTimeout    error = &timeoutError{op: "relay connect"}
	ErrIncomingConnectTimeout error = &timeoutError{op: "incoming connect"}
	ErrBindSessionTimeout     error = &timeoutError{op: "bind session"}
	ErrAuthTimeout            error = &timeoutError{op: "relay authentication"}
)

// Lifecycle errors.
var (
	// ErrSessionClosed is returned by operations on a session that has ended.
	ErrSessionClosed = errors.New("msrp: session closed")
	// ErrServerClosed is returned by MSRPServer operations after Close.
	ErrServerClosed = errors.New("msrp: server closed")
	// ErrPeerClosed is why a session ended when the peer closed the
	// connection at a chunk boundary while something was still queued,
	// awaited or half received: MSRPSession.Err returns it, and what was
	// lost fails with it (and ErrSessionClosed). It matches io.EOF.
	ErrPeerClosed = fmt.Errorf("msrp: peer closed the connection: %w", io.EOF)
)

// Causes carried by a *ChunkParseError. Match them with errors.Is.
var (
	// ErrBadStartLine: a line where a chunk should start is not an MSRP start line.
	ErrBadStartLine = errors.New("msrp: malformed start line")
	// ErrLineTooLong: a start or header line is longer than Parser.MaxLineLength.
	ErrLineTooLong = errors.New("msrp: line too long")
	// ErrTooManyHeaders: a chunk has more header lines than Parser.MaxHeaders.
	ErrTooManyHeaders = errors.New("msrp: too many header lines")
	// ErrMalformedHeader: a header line is not "name: value" with a token name and
	// a value free of control characters.
	ErrMalformedHeader = errors.New("msrp: malformed header line")
	// ErrChunkTooLarge: a chunk (headers and body) exceeds Parser.MaxChunkSize.
	ErrChunkTooLarge = errors.New("msrp: chunk too large")
	// ErrTruncatedChunk: a new start line arrived before the previous chunk's
	// end-line, so the previous chunk was cut short by its sender.
	ErrTruncatedChunk = errors.New("msrp: chunk truncated by a new start line")
)

// Causes carried by a *HeaderError.
var (
	// ErrHeaderMissing: the chunk does not carry the header asked for.
	ErrHeaderMissing = errors.New("msrp: header missing")
	// ErrHeaderInvalid: the header is present but its value does not follow
	// the grammar of RFC 4975 (or RFC 4976 for the relay headers).
	ErrHeaderInvalid = errors.New("msrp: invalid header value")
)

// Encoding errors returned by Chunk.Encode.
var (
	// ErrBodyContainsEndLine: the body holds the chunk's own end-line
	// ("-------" + transaction id + flag), which would cut the chunk short
	// on the wire (RFC 4975 §7.1). Send the body under another transaction id.
	ErrBodyContainsEndLine = errors.New("msrp: body contains the chunk's end-line")
	// ErrInvalidChunk: a field of the chunk cannot be written on the wire
	// (bad transaction id, method, status code, flag, header name or value).
	ErrInvalidChunk = errors.New("msrp: invalid chunk")
)

// timeoutError is the shared shape of the Err…Timeout sentinels.
type timeoutError struct{ op string }

func (e *timeoutError) Error() string { return "msrp: " + e.op + " timed out" }

// Timeout reports true, so the error satisfies the net.Error convention.
func (e *timeoutError) Timeout() bool { return true }

// Is makes every timeout sentinel match ErrTimeout and context.DeadlineExceeded.
func (e *timeoutError) Is(target error) bool {
	return target == ErrTimeout || target == context.DeadlineExceeded
}

// TransactionError is an MSRP status code other than 200 as an error: a
// negative response from the peer, or one decided locally (408 when no
// response comes in time, 400 or 481 for a chunk that fails validation). It is
// the port of msrplib's MSRPTransactionError family (MSRPBadRequest is code
// 400, MSRPNoSuchSessionError is 481, MSRPRelayAuthError carries the relay's
// code). Use errors.As to get at the code:
//
//	var te *msrp.TransactionError
//	if errors.As(err, &te) && te.Code == 481 { ... }
type TransactionError struct {
	Code    int    // MSRP status code, 3 digits
	Comment string // reason phrase; informative only, never match on it
}

// Error returns "msrp: <code> <comment>", with the registered reason
// phrase when the comment is empty.
func (e *TransactionError) Error() string {
	comment := e.Comment
	if comment == "" {
		comment = StatusText(e.Code)
	}
	if comment == "" {
		return "msrp: status " + pad3(e.Code)
	}
	return "msrp: " + pad3(e.Code) + " " + comment
}

// Timeout reports whether the error is a 408, the code MSRP uses for a
// transaction that got no response in time.
func (e *TransactionError) Timeout() bool { return e.Code == 408 }

// Is makes a 408 match ErrTimeout.
func (e *TransactionError) Is(target error) bool { return e.Code == 408 && target == ErrTimeout }

// ChunkParseError reports input the Parser could not turn into a valid chunk.
// Err is one of ErrBadStartLine, ErrLineTooLong, ErrTooManyHeaders,
// ErrMalformedHeader, ErrChunkTooLarge or ErrTruncatedChunk.
//
// When the bad input belongs to a chunk whose start line was valid, Chunk holds
// what was read of it (start line and the headers that parsed; the body too if
// the chunk was framed completely), so that the receiver can answer it: 400 for
// a malformed request, 413 for one that is too large (RFC 4975 §7.2, §10.5).
type ChunkParseError struct {
	Err   error  // the cause, one of the sentinels above
	Chunk *Chunk // the chunk the bad input belongs to, or nil
	Data  []byte // up to 100 bytes of the offending input, for logs
}

// Error names the cause, the transaction when known, and the offending input.
func (e *ChunkParseError) Error() string {
	msg := e.Err.Error()
	if e.Chunk != nil && e.Chunk.TransactionID != "" {
		msg += " (transaction " + e.Chunk.TransactionID + ")"
	}
	if len(e.Data) > 0 {
		msg += ": " + strconv.Quote(string(e.Data))
	}
	return msg
}

// Unwrap returns the cause, for errors.Is.
func (e *ChunkParseError) Unwrap() error { return e.Err }

// maxErrorData bounds how much offending input an error keeps.
const maxErrorData = 100

func newParseError(cause error, c *Chunk, data []byte) *ChunkParseError {
	if len(data) > maxErrorData {
		data = data[:maxErrorData]
	}
	return &ChunkParseError{Err: cause, Chunk: c, Data: append([]byte(nil), data...)}
}

// HeaderError reports a header that a typed accessor could not decode.
// Err is ErrHeaderMissing or ErrHeaderInvalid; a receiver answers a request
// with such a header with 400 (RFC 4975 §7.2) and carries on.
type HeaderError struct {
	Name   string // canonical header name, e.g. "Byte-Range"
	Value  string // the value as received (empty when missing)
	Reason string // what is wrong with it, empty when missing
	Err    error  // ErrHeaderMissing or ErrHeaderInvalid
}

// Error names the header and what is wrong with it.
func (e *HeaderError) Error() string {
	if e.Err == ErrHeaderMissing {
		return "msrp: " + e.Name + " header missing"
	}
	return fmt.Sprintf("msrp: invalid %s header %q: %s", e.Name, e.Value, e.Reason)
}

// Unwrap returns ErrHeaderMissing or ErrHeaderInvalid, for errors.Is.
func (e *HeaderError) Unwrap() error { return e.Err }

func missingHeader(name string) error {
	return &HeaderError{Name: name, Err: ErrHeaderMissing}
}

func invalidHeader(name, value, reason string) error {
	return &HeaderError{Name: name, Value: value, Reason: reason, Err: ErrHeaderInvalid}
}

// StatusText returns the reason phrase registered for an MSRP status code
// (IANA "Message Session Relay Protocol (MSRP) Parameters", RFC 4975, RFC
// 4976, RFC 7701), or "" if the code is unknown.
func StatusText(code int) string {
	switch code {
	case 200:
		return "OK"
	case 400:
		return "Bad Request"
	case 401:
		return "Unauthorized"
	case 403:
		return "Forbidden"
	case 404:
		return "Not Found"
	case 408:
		return "Request Timeout"
	case 413:
		return "Unwanted Message"
	case 415:
		return "Unsupported Media Type"
	case 423:
		return "Interval Out-of-Bounds"
	case 424:
		return "Bad Nickname"
	case 425:
		return "Nickname Not Allowed"
	case 428:
		return "Private Messages Not Supported"
	case 481:
		return "No Such Session"
	case 501:
		return "Not Implemented"
	case 506:
		return "Session Already Bound"
	}
	return ""
}

// appendCode appends a status code with three digits, as the wire
// requires, without allocating.
func appendCode(b []byte, code int) []byte {
	if code >= 0 && code < 1000 {
		return append(b, byte('0'+code/100), byte('0'+code/10%10), byte('0'+code%10))
	}
	return strconv.AppendInt(b, int64(code), 10)
}

// pad3 formats a status code with three digits, as the wire requires.
func pad3(code int) string {
	if code >= 0 && code < 1000 {
		return string([]byte{byte('0' + code/100), byte('0' + code/10%10), byte('0' + code%10)})
	}
	return strconv.Itoa(code)
}
