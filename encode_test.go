package msrp

import (
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Encode writes a Content-Type only within RFC 4975 §9's media-type: not
// a ";" with no parameter after it, nor whitespace around ";" and "="
// beyond the one space after ";" that everyone writes.
func TestEncodeContentTypeFollowsTheGrammar(t *testing.T) {
	for _, ct := range []string{
		"text/plain;",                     // ";" must be followed by gen-param
		"text/plain; charset=utf-8;",      // likewise
		"text/plain ; charset=utf-8",      // no whitespace before ";"
		"text/plain; charset = utf-8",     // nor around "="
		"text/plain;\tcharset=utf-8",      // nor a tab after ";"
		"text/plain;  charset=utf-8",      // nor two spaces
		"text/plain; charset=\"a\" ; x=y", // nor whitespace before a later ";"
	} {
		c := sendWithContentType(ct)
		raw, err := c.Encode(nil)
		if err != nil {
			continue // refusing is fine
		}
		assert.NoError(t, checkABNF(raw), "Encode wrote Content-Type %q", ct)
	}
}

// And it writes every value the grammar allows: gen-param = pname
// [ "=" pval ] (the value is optional), and a quoted-string may hold ";".
func TestEncodeAcceptsEveryValidContentType(t *testing.T) {
	for _, ct := range []string{
		`text/plain; flowed`,
		`multipart/mixed; boundary="a;b"`,
		`message/cpim; x="semi;colon"`,
	} {
		c := sendWithContentType(ct)
		require.NoError(t, checkABNF(encodeUnchecked(c)), "the grammar allows %q", ct)
		_, err := c.Encode(nil)
		assert.NoError(t, err, "Encode refuses the valid Content-Type %q", ct)
	}
}

// Encode "allocates nothing when dst has room", for the chunks a
// session really writes: relay paths, IPv6 hosts, userinfo and URI
// parameters, a REPORT's Status, a Content-Type with parameters.
func TestEncodeNoAllocsRealisticChunks(t *testing.T) {
	paths := Header{
		{HeaderToPath, "msrps://relay.example.com:2856/abcd;tcp msrps://[2001:db8::1]:2855/s1234;tcp;sessmatch"},
		{HeaderFromPath, "msrps://alice@[::1]:12345/a+b;tcp"},
	}
	chunks := map[string]*Chunk{
		"SEND": {TransactionID: "abcd1234", Method: MethodSEND, ContFlag: FlagContinued, Data: []byte("hello"),
			Headers: append(append(Header{}, paths...), Header{{HeaderMessageID, "m1234567"}, {HeaderByteRange, "1-5/*"},
				{HeaderSuccessReport, "yes"}, {HeaderFailureReport, "partial"}, {"Content-Disposition", "inline"},
				{HeaderContentType, `text/plain; charset="utf-8"`}}...)},
		"REPORT": {TransactionID: "abcd1234", Method: MethodREPORT, ContFlag: FlagEnd,
			Headers: append(append(Header{}, paths...), Header{{HeaderMessageID, "m1234567"}, {HeaderByteRange, "1-5/5"},
				{HeaderStatus, "000 200 OK"}}...)},
		"AUTH": {TransactionID: "abcd1234", Method: MethodAUTH, ContFlag: FlagEnd,
			Headers: append(append(Header{}, paths...), Header{{HeaderExpires, "600"},
				{HeaderAuthorization, `Digest username="alice", realm="example.com", nonce="x", uri="msrps://example.com;tcp", response="00"`}}...)},
		"response": {TransactionID: "abcd1234", Code: 200, Comment: "OK", ContFlag: FlagEnd, Headers: paths},
	}
	buf := make([]byte, 0, 4096)
	for name, c := range chunks {
		_, err := c.Encode(buf[:0])
		require.NoError(t, err, name)
		allocs := testing.AllocsPerRun(50, func() { buf, _ = c.Encode(buf[:0]) })
		assert.Zero(t, allocs, name)
	}
}

func sendWithContentType(ct string) *Chunk {
	return &Chunk{TransactionID: "tid12345", Method: MethodSEND, ContFlag: FlagEnd, Data: []byte("hi"),
		Headers: Header{
			{HeaderToPath, "msrp://b.example.com:2855/s1234;tcp"},
			{HeaderFromPath, "msrp://a.example.com:2855/s5678;tcp"},
			{HeaderMessageID, "m1234567"},
			{HeaderByteRange, "1-2/2"},
			{HeaderContentType, ct},
		}}
}

// A peer's Content-Type with a trailing ";" is read, as Go's
// mime.ParseMediaType reads it, and the SEND is delivered. For a few
// commits it got 400.
func TestContentTypeReadsATrailingSemicolon(t *testing.T) {
	for _, ct := range []string{"text/plain;", "text/plain; charset=UTF-8;"} {
		t.Run(ct, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				_, peer := pipeSessionAndPeer(t, SessionConfig{KeepaliveInterval: -1, AcceptTypes: []string{"text/plain"}})
				c := textSend(peer, "hi")
				c.Headers.Set(HeaderContentType, ct)
				resp := peerSendExpect(t, peer, c)
				require.NotNil(t, resp)
				assert.Equal(t, 200, resp.Code, "%s: %d %s", ct, resp.Code, resp.Comment)
			})
		})
	}
}

// The media-type scanner reads a peer's whitespace around separators and
// writes only the grammar.
func TestMediaTypeScanner(t *testing.T) {
	for _, v := range []string{"text/plain", "text/plain ; charset = utf-8", "text/plain;\tcharset=\"a;b\"", "a/b;flag", "a/b; x=\"\\\"\""} {
		assert.True(t, readableMediaType(v), v)
	}
	for _, v := range []string{"text/plain; charset = utf-8", "text/plain ;charset=utf-8", "text/plain;  a=b", "text/plain;", "a/b; x=\"\\n\"", "a/b;x=\"unterminated", "a/b;(c)=d", "a/b c"} {
		assert.False(t, validMediaType(v), v)
	}
	for _, v := range []string{"text/plain;charset=utf-8", "text/plain; charset=utf-8", "a/b;x=\"\\\\ \\\" é\"", "a/b;flag;y=z", "application/vnd.gsma.rcs-ft-http+xml"} {
		assert.True(t, validMediaType(v), v)
	}
}
