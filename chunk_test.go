package msrp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestHeaderOps(t *testing.T) {
	var h Header
	h.Add("To-Path", "a")
	h.Add("X-Dup", "1")
	h.Add("from-path", "b")
	h.Add("x-dup", "2")
	assert.Equal(t, "a", h.Get("TO-PATH"))
	assert.Equal(t, "1", h.Get("X-Dup"), "Get returns the first")
	_, ok := h.Lookup("Missing")
	assert.False(t, ok)

	h.Set("X-DUP", "3")
	assert.Equal(t, Header{{"To-Path", "a"}, {"X-Dup", "3"}, {"from-path", "b"}}, h)
	h.Set("Content-Type", "text/plain")
	assert.Equal(t, "text/plain", h.Get("content-type"))
	h.Del("to-path")
	assert.Equal(t, Header{{"X-Dup", "3"}, {"from-path", "b"}, {"Content-Type", "text/plain"}}, h)
}

func chunkWith(headers ...string) *Chunk {
	c := &Chunk{TransactionID: "abcd1234", Method: "SEND"}
	for i := 0; i+1 < len(headers); i += 2 {
		c.Headers.Add(headers[i], headers[i+1])
	}
	return c
}

func TestAccessorsMissing(t *testing.T) {
	c := chunkWith()
	_, err := c.ToPath()
	assert.ErrorIs(t, err, ErrHeaderMissing)
	var he *HeaderError
	require.ErrorAs(t, err, &he)
	assert.Equal(t, "To-Path", he.Name)
	assert.Equal(t, "msrp: To-Path header missing", err.Error())
	for _, f := range []func() error{
		func() error { _, err := c.FromPath(); return err },
		func() error { _, err := c.UsePath(); return err },
		func() error { _, err := c.MessageID(); return err },
		func() error { _, err := c.ByteRange(); return err },
		func() error { _, err := c.Status(); return err },
		func() error { _, err := c.ContentType(); return err },
		func() error { _, err := c.Expires(); return err },
		func() error { _, err := c.MinExpires(); return err },
		func() error { _, err := c.MaxExpires(); return err },
		func() error { _, err := c.WWWAuthenticate(); return err },
		func() error { _, err := c.Authorization(); return err },
		func() error { _, err := c.AuthenticationInfo(); return err },
	} {
		assert.ErrorIs(t, f(), ErrHeaderMissing)
	}
	// Report headers have RFC defaults.
	sr, err := c.SuccessReport()
	require.NoError(t, err)
	assert.False(t, sr)
	fr, err := c.FailureReport()
	require.NoError(t, err)
	assert.Equal(t, FailureReportYes, fr)
}

func TestByteRange(t *testing.T) {
	good := map[string]ByteRange{
		"1-25/25":     {1, 25, 25},
		"1-0/0":       {1, 0, 0},
		"1-*/4096":    {1, Unknown, 4096},
		"4097-*/*":    {4097, Unknown, Unknown},
		"11-20/*":     {11, 20, Unknown},
		"1-1/1000000": {1, 1, 1000000},
	}
	for v, want := range good {
		got, err := chunkWith("Byte-Range", v).ByteRange()
		require.NoError(t, err, v)
		assert.Equal(t, want, got, v)
		assert.Equal(t, v, got.String())
	}
	for _, v := range []string{"", "x", "1-5", "0-5/5", "-1-5/5", "1-5/5x", "1-5/4", "5-3/10", "1- 5/5",
		"+1-5/5", "1-*/", "1-5/*/", "*-5/5", "1-99999999999999999999/*"} {
		_, err := chunkWith("Byte-Range", v).ByteRange()
		assert.ErrorIs(t, err, ErrHeaderInvalid, v)
	}
}

func TestStatus(t *testing.T) {
	got, err := chunkWith("Status", "000 200 OK").Status()
	require.NoError(t, err)
	assert.Equal(t, Status{200, "OK"}, got)
	assert.Equal(t, "000 200 OK", got.String())
	got, err = chunkWith("Status", "000 413").Status()
	require.NoError(t, err)
	assert.Equal(t, Status{413, ""}, got)
	assert.Equal(t, "000 413", got.String())
	// msrplib §11.2 #8: "Status: 200 OK" killed the session; here it is only an error.
	for _, v := range []string{"200 OK", "000 20", "000 2000", "001 200", "000 abc", "000200"} {
		_, err := chunkWith("Status", v).Status()
		assert.ErrorIs(t, err, ErrHeaderInvalid, v)
	}
}

func TestReportHeaders(t *testing.T) {
	for v, want := range map[string]bool{"yes": true, "YES": true, "no": false, "No": false} {
		got, err := chunkWith("Success-Report", v).SuccessReport()
		require.NoError(t, err)
		assert.Equal(t, want, got)
	}
	_, err := chunkWith("Success-Report", "maybe").SuccessReport()
	assert.ErrorIs(t, err, ErrHeaderInvalid)
	for v, want := range map[string]FailureReport{"yes": FailureReportYes, "no": FailureReportNo, "partial": FailureReportPartial, "PARTIAL": FailureReportPartial} {
		got, err := chunkWith("Failure-Report", v).FailureReport()
		require.NoError(t, err)
		assert.Equal(t, want, got)
		assert.Equal(t, want, FailureReport(0)+want)
	}
	assert.Equal(t, "partial", FailureReportPartial.String())
	assert.Equal(t, "no", FailureReportNo.String())
	assert.Equal(t, "yes", FailureReportYes.String())
	_, err = chunkWith("Failure-Report", "sometimes").FailureReport()
	assert.ErrorIs(t, err, ErrHeaderInvalid)
}

func TestMessageIDAndContentType(t *testing.T) {
	id, err := chunkWith("Message-ID", "87652491").MessageID()
	require.NoError(t, err)
	assert.Equal(t, "87652491", id)
	for _, v := range []string{"abc", "-abc", "a b c d", "0123456789012345678901234567890123"} {
		_, err := chunkWith("Message-ID", v).MessageID()
		assert.ErrorIs(t, err, ErrHeaderInvalid, v)
	}
	ct, err := chunkWith("content-type", "text/plain; charset=utf-8").ContentType()
	require.NoError(t, err)
	assert.Equal(t, "text/plain; charset=utf-8", ct)
	// RFC 4975 §9: gen-param = pname [ "=" pval ]; a peer's whitespace
	// around the separators is read too.
	for _, v := range []string{"text/plain; flowed", `multipart/mixed; boundary="a;b"`, "text/plain ; charset = utf-8", " text/plain", "text/plain;", "text/plain; charset=UTF-8;"} {
		got, err := chunkWith("Content-Type", v).ContentType()
		assert.NoError(t, err, v)
		assert.Equal(t, v, got)
	}
	for _, v := range []string{"", "text", "/", "text/", "text/plain; a=", `text/plain; a="x`, `text/plain; a="\x"`, "text/plain a=b", "text/pl@in"} {
		_, err := chunkWith("Content-Type", v).ContentType()
		assert.ErrorIs(t, err, ErrHeaderInvalid, v)
	}
}

func TestPathHeaders(t *testing.T) {
	c := chunkWith("To-Path", "msrps://relay:2855/r;tcp msrp://b/s;tcp", "From-Path", "msrp://a/s;tcp",
		"Use-Path", "msrps://relay.example.com:2855/hjdhfsesdf;tcp")
	to, err := c.ToPath()
	require.NoError(t, err)
	require.Len(t, to, 2)
	assert.Equal(t, "relay", to[0].Host)
	from, err := c.FromPath()
	require.NoError(t, err)
	assert.Equal(t, "a", from[0].Host)
	use, err := c.UsePath()
	require.NoError(t, err)
	assert.Equal(t, "hjdhfsesdf", use[0].SessionID)
	_, err = chunkWith("To-Path", "msrp://a/s;tcp http://x").ToPath()
	assert.ErrorIs(t, err, ErrHeaderInvalid)
}

func TestExpiresHeaders(t *testing.T) {
	c := chunkWith("Expires", "900", "Min-Expires", "60", "Max-Expires", "3600")
	n, err := c.Expires()
	require.NoError(t, err)
	assert.Equal(t, 900, n)
	n, err = c.MinExpires()
	require.NoError(t, err)
	assert.Equal(t, 60, n)
	n, err = c.MaxExpires()
	require.NoError(t, err)
	assert.Equal(t, 3600, n)
	for _, v := range []string{"", "-1", "1.5", "ten", "99999999999"} {
		_, err := chunkWith("Expires", v).Expires()
		assert.ErrorIs(t, err, ErrHeaderInvalid, v)
	}
}

func TestDigestHeaders(t *testing.T) {
	c := chunkWith("WWW-Authenticate", `Digest realm="intra.example.com", qop="auth", nonce="dcd9\"8b", algorithm=MD5, stale=false`)
	p, err := c.WWWAuthenticate()
	require.NoError(t, err)
	assert.Equal(t, AuthParams{{"realm", "intra.example.com"}, {"qop", "auth"}, {"nonce", `dcd9"8b`}, {"algorithm", "MD5"}, {"stale", "false"}}, p)
	v, ok := p.Get("NONCE")
	assert.True(t, ok)
	assert.Equal(t, `dcd9"8b`, v)
	_, ok = p.Get("opaque")
	assert.False(t, ok)

	c = chunkWith("Authorization", `digest username="Alice",realm="r",qop=auth,nc=00000001`)
	p, err = c.Authorization()
	require.NoError(t, err)
	assert.Equal(t, AuthParams{{"username", "Alice"}, {"realm", "r"}, {"qop", "auth"}, {"nc", "00000001"}}, p)

	c = chunkWith("Authentication-Info", `rspauth="abc", qop=auth, nc=00000001, cnonce="x"`)
	p, err = c.AuthenticationInfo()
	require.NoError(t, err)
	assert.Len(t, p, 4)

	for _, v := range []string{"Basic abc", "Digest", "Digest realm", `Digest realm="x`, `Digest realm="x" nonce="y"`,
		"Digest =x", `Digest realm=a b`, `Digest realm="x\`} {
		_, err := chunkWith("WWW-Authenticate", v).WWWAuthenticate()
		assert.ErrorIs(t, err, ErrHeaderInvalid, v)
	}
}

func mustPath(t *testing.T, s string) []URI {
	t.Helper()
	p, err := ParsePath(s)
	require.NoError(t, err)
	return p
}

func TestNewRequestAndResponse(t *testing.T) {
	relayed := mustPath(t, "msrp://relay1/r1;tcp msrp://relay2/r2;tcp msrp://bob/b;tcp")
	from := mustPath(t, "msrp://alice/a;tcp")
	req := NewRequest("SEND", relayed, from)
	assert.True(t, validIdent(req.TransactionID))
	assert.True(t, req.IsRequest())
	assert.Equal(t, FlagEnd, req.ContFlag)

	// At Bob, the request arrives with relays prepended to From-Path.
	arrived := &Chunk{TransactionID: "tid12345", Method: "SEND", Headers: Header{
		{"To-Path", "msrp://bob/b;tcp"},
		{"From-Path", "msrp://relay2/r2;tcp msrp://relay1/r1;tcp msrp://alice/a;tcp"},
	}}
	resp, err := NewResponse(arrived, 200, "")
	require.NoError(t, err)
	assert.Equal(t, "tid12345", resp.TransactionID)
	assert.Equal(t, "MSRP tid12345 200 OK", resp.String())
	assert.Equal(t, "msrp://relay2/r2;tcp", resp.Headers.Get("To-Path"), "SEND: previous hop only")
	assert.Equal(t, "msrp://bob/b;tcp", resp.Headers.Get("From-Path"))
	assert.False(t, resp.IsRequest())

	other := arrived.Clone()
	other.Method = "NICKNAME"
	resp, err = NewResponse(other, 425, "Taken")
	require.NoError(t, err)
	assert.Equal(t, "msrp://relay2/r2;tcp msrp://relay1/r1;tcp msrp://alice/a;tcp", resp.Headers.Get("To-Path"), "non-SEND: whole From-Path")
	assert.Equal(t, "MSRP tid12345 425 Taken", resp.String())

	_, err = NewResponse(resp, 200, "")
	assert.ErrorIs(t, err, ErrInvalidChunk)
	_, err = NewResponse(chunkWith("From-Path", "msrp://a/b;tcp"), 200, "")
	assert.ErrorIs(t, err, ErrHeaderMissing)
}

func TestResponseWanted(t *testing.T) {
	tests := []struct {
		method, fr string
		code       int
		want       bool
	}{
		{"SEND", "", 200, true},
		{"SEND", "yes", 400, true},
		{"SEND", "no", 200, false},
		{"SEND", "no", 400, false},
		{"SEND", "partial", 200, false},
		{"SEND", "partial", 415, true},
		{"SEND", "garbage", 400, true},
		{"REPORT", "", 200, false}, // RFC 4975 §7.1.2
		{"REPORT", "yes", 400, false},
		{"NICKNAME", "no", 501, false}, // msrplib §11.2 #9 crashed here
	}
	for _, tc := range tests {
		c := chunkWith()
		c.Method = tc.method
		if tc.fr != "" {
			c.Headers.Set("Failure-Report", tc.fr)
		}
		assert.Equal(t, tc.want, c.ResponseWanted(tc.code), "%+v", tc)
	}
	assert.False(t, (&Chunk{TransactionID: "abcd", Code: 200}).ResponseWanted(200))
}

func TestEncodeOrderAndBlankLine(t *testing.T) {
	c := &Chunk{TransactionID: "abcd1234", Method: "SEND", Data: []byte("hello"), ContFlag: '+',
		Headers: Header{{"Content-Type", "text/plain"}, {"Byte-Range", "1-5/5"}, {"From-Path", "msrp://a/s;tcp"},
			{"Content-Disposition", "inline"}, {"Message-ID", "mid12345"}, {"To-Path", "msrp://b/s;tcp"}, {"Success-Report", "yes"}}}
	out, err := c.Encode([]byte("prefix|"))
	require.NoError(t, err)
	// RFC 4975 §9: To-Path, From-Path, the other headers, the MIME headers,
	// Content-Type last, a blank line, the body.
	assert.Equal(t, "prefix|MSRP abcd1234 SEND\r\nTo-Path: msrp://b/s;tcp\r\nFrom-Path: msrp://a/s;tcp\r\n"+
		"Byte-Range: 1-5/5\r\nMessage-ID: mid12345\r\nSuccess-Report: yes\r\nContent-Disposition: inline\r\n"+
		"Content-Type: text/plain\r\n\r\nhello\r\n-------abcd1234+\r\n", string(out))
	parsed := parseOne(t, out[len("prefix|"):])
	assert.Equal(t, "hello", string(parsed.Data))

	resp := &Chunk{TransactionID: "abcd1234", Code: 200, Headers: Header{{"To-Path", "msrp://a/s;tcp"}, {"From-Path", "msrp://b/s;tcp"}}}
	out, err = resp.Encode(nil)
	require.NoError(t, err)
	assert.Equal(t, "MSRP abcd1234 200\r\nTo-Path: msrp://a/s;tcp\r\nFrom-Path: msrp://b/s;tcp\r\n-------abcd1234$\r\n",
		string(out), "zero flag is written as $")

	withType := &Chunk{TransactionID: "abcd1234", Method: "SEND",
		Headers: Header{{"To-Path", "msrp://b/s;tcp"}, {"From-Path", "msrp://a/s;tcp"}, {"Content-Type", "text/plain"}}}
	out, err = withType.Encode(nil)
	require.NoError(t, err)
	assert.Equal(t, "MSRP abcd1234 SEND\r\nTo-Path: msrp://b/s;tcp\r\nFrom-Path: msrp://a/s;tcp\r\n"+
		"Content-Type: text/plain\r\n\r\n\r\n-------abcd1234$\r\n", string(out))
	assert.Equal(t, withType.Headers, parseOne(t, out).Headers)

	// Without a body section, Content-* headers are ordinary ones.
	noBody := &Chunk{TransactionID: "abcd1234", Method: "SEND",
		Headers: Header{{"Content-ID", "<x@y>"}, {"To-Path", "msrp://b/s;tcp"}, {"From-Path", "msrp://a/s;tcp"}, {"Message-ID", "m1234567"}}}
	out, err = noBody.Encode(nil)
	require.NoError(t, err)
	assert.Equal(t, "MSRP abcd1234 SEND\r\nTo-Path: msrp://b/s;tcp\r\nFrom-Path: msrp://a/s;tcp\r\n"+
		"Content-ID: <x@y>\r\nMessage-ID: m1234567\r\n-------abcd1234$\r\n", string(out))
}

// refusableChunk is a chunk Encode writes, which each of encodeRefusals
// turns into one it refuses.
func refusableChunk() *Chunk {
	return &Chunk{TransactionID: "abcd1234", Method: "SEND", Headers: Header{{"To-Path", "msrp://b/s;tcp"}, {"From-Path", "msrp://a/s;tcp"}}}
}

func encodeRefusals() map[string]func(c *Chunk) {
	return map[string]func(c *Chunk){
		"short tid":          func(c *Chunk) { c.TransactionID = "abc" },
		"long tid":           func(c *Chunk) { c.TransactionID = "a123456789012345678901234567890123" },
		"tid with space":     func(c *Chunk) { c.TransactionID = "ab cd" },
		"lower-case method":  func(c *Chunk) { c.Method = "send" },
		"method and code":    func(c *Chunk) { c.Code = 200 },
		"code too big":       func(c *Chunk) { c.Method = ""; c.Code = 1000 },
		"comment with CRLF":  func(c *Chunk) { c.Method = ""; c.Code = 200; c.Comment = "OK\r\nX: y" },
		"bad flag":           func(c *Chunk) { c.ContFlag = '!' },
		"CRLF in value":      func(c *Chunk) { c.Headers.Add("X-Inject", "a\r\nTo-Path: evil") },
		"LF in value":        func(c *Chunk) { c.Headers.Add("X-Inject", "a\nb") },
		"space in name":      func(c *Chunk) { c.Headers.Add("X Inject", "a") },
		"empty name":         func(c *Chunk) { c.Headers.Add("", "a") },
		"leading space":      func(c *Chunk) { c.Headers.Add("X-A", " a") },
		"NUL in value":       func(c *Chunk) { c.Headers.Add("X-A", "a\x00") },
		"value not UTF-8":    func(c *Chunk) { c.Headers.Add("X-A", "a\xf0") },
		"comment not UTF-8":  func(c *Chunk) { c.Method = ""; c.Code = 200; c.Comment = "\xff" },
		"end-line in body":   func(c *Chunk) { c.Data = []byte("text\r\n-------abcd1234$\r\nmore") },
		"end-line at end":    func(c *Chunk) { c.Data = []byte("text\r\n-------abcd1234$") },
		"bare end-line body": func(c *Chunk) { c.Data = []byte("-------abcd1234#") },
		"no To-Path":         func(c *Chunk) { c.Headers.Del(HeaderToPath) },
		"no From-Path":       func(c *Chunk) { c.Headers.Del(HeaderFromPath) },
		"two To-Paths":       func(c *Chunk) { c.Headers.Add(HeaderToPath, "msrp://c/s;tcp") },
		"bad To-Path":        func(c *Chunk) { c.Headers.Set(HeaderToPath, "msrp://b/s") },
		"path with 2 spaces": func(c *Chunk) { c.Headers.Set(HeaderToPath, "msrp://b/s;tcp  msrp://c/s;tcp") },
		"name not a letter":  func(c *Chunk) { c.Headers.Add("1X", "a") },
		"bad Byte-Range":     func(c *Chunk) { c.Headers.Add(HeaderByteRange, "x") },
		"bad Message-ID":     func(c *Chunk) { c.Headers.Add(HeaderMessageID, "a b") },
		"bad Status":         func(c *Chunk) { c.Headers.Add(HeaderStatus, "200 OK") },
		"bad Success-Report": func(c *Chunk) { c.Headers.Add(HeaderSuccessReport, "maybe") },
		"bad Failure-Report": func(c *Chunk) { c.Headers.Add(HeaderFailureReport, "sometimes") },
		"bad Content-Type":   func(c *Chunk) { c.Headers.Add(HeaderContentType, "text") },
		"two Content-Types":  func(c *Chunk) { c.Headers.Add(HeaderContentType, "a/b"); c.Headers.Add(HeaderContentType, "c/d") },
		"bad Expires":        func(c *Chunk) { c.Headers.Add(HeaderExpires, "-1") },
		"body, no type":      func(c *Chunk) { c.Data = []byte("hello") },
		"response with body": func(c *Chunk) {
			c.Method = ""
			c.Code = 200
			c.Headers.Add(HeaderContentType, "a/b")
			c.Data = []byte("x")
		},
		"response with type": func(c *Chunk) { c.Method = ""; c.Code = 200; c.Headers.Add(HeaderContentType, "a/b") },
	}
}

func TestEncodeRefuses(t *testing.T) {
	ok := refusableChunk
	for name, mutate := range encodeRefusals() {
		c := ok()
		mutate(c)
		out, err := c.Encode([]byte("keep"))
		assert.Error(t, err, name)
		if !strings.HasSuffix(name, "body") && !strings.HasPrefix(name, "end-line") {
			assert.ErrorIs(t, err, ErrInvalidChunk, name)
		}
		assert.Equal(t, "keep", string(out), "%s: dst returned unchanged", name)
	}
	c := ok()
	c.Headers.Add(HeaderContentType, "text/plain")
	c.Data = []byte("-------abcd1234$")
	_, err := c.Encode(nil)
	assert.ErrorIs(t, err, ErrBodyContainsEndLine)

	// Near misses are fine.
	c.Data = []byte("-------abcd1234\r\n-------abcd123$\r\n-------abcd12345$")
	_, err = c.Encode(nil)
	assert.NoError(t, err)
}

// A memo of the values found valid saves parsing them again, and changes
// nothing else: what Encode refuses is refused with the memo as warm as a
// session keeps it, and the bytes written are the same.
func TestValidMemoRefusesWhatEncodeRefuses(t *testing.T) {
	var memo validMemo
	warm := func() {
		c := refusableChunk()
		c.Headers.Add(HeaderContentType, "a/b")
		c.Data = []byte("x")
		want, err := c.Encode(nil)
		require.NoError(t, err)
		got, err := c.appendHead(nil, false, &memo)
		require.NoError(t, err)
		assert.Equal(t, string(want), string(c.appendTail(append(got, c.Data...))))
	}
	for name, mutate := range encodeRefusals() {
		warm()
		c := refusableChunk()
		mutate(c)
		_, want := c.Encode(nil)
		_, got := c.appendHead(nil, false, &memo)
		assert.Equal(t, want, got, name)
		assert.Equal(t, want, c.check(&memo), name)
	}
	// Values that differ from remembered ones by a byte are checked anew,
	// whichever kind remembered them.
	for _, v := range []string{"msrp://b/s;tcp ", "msrp://b/s", "msrp://b/s;tcp\t", "a/b;", "a/"} {
		assert.False(t, memo.check(memoPath, v, validPathValue), v)
		assert.False(t, memo.check(memoMediaType, v, validMediaType), v)
	}
	assert.True(t, memo.check(memoReadableMedia, "a/b ;x=y", readableMediaType))
	assert.False(t, memo.check(memoMediaType, "a/b ;x=y", validMediaType), "remembered as readable, not as written")
}

// Many goroutines remember and look up at once (run with -race).
func TestValidMemoConcurrent(t *testing.T) {
	var memo validMemo
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				v := fmt.Sprintf("msrp://h%d/s%d;tcp", g, i%7)
				assert.True(t, memo.check(memoPath, v, validPathValue))
				assert.False(t, memo.check(memoPath, v+" ", validPathValue))
			}
		})
	}
	wg.Wait()
}

func TestEncodeNoAllocs(t *testing.T) {
	c := &Chunk{TransactionID: "abcd1234", Method: "SEND", Data: bytes.Repeat([]byte("x"), 2048), ContFlag: '$',
		Headers: Header{{"To-Path", "msrp://b/s;tcp"}, {"From-Path", "msrp://a/s;tcp"}, {"Message-ID", "m1234567"},
			{"Byte-Range", "1-2048/2048"}, {"Content-Type", "text/plain"}}}
	buf := make([]byte, 0, 4096)
	allocs := testing.AllocsPerRun(100, func() {
		var err error
		buf, err = c.Encode(buf[:0])
		if err != nil {
			panic(err)
		}
	})
	assert.Zero(t, allocs)
}

func TestCloneIsDeep(t *testing.T) {
	c := chunkWith("To-Path", "msrp://a/b;tcp")
	c.Data = []byte("abc")
	d := c.Clone()
	d.Data[0] = 'X'
	d.Headers[0].Value = "changed"
	assert.Equal(t, "abc", string(c.Data))
	assert.Equal(t, "msrp://a/b;tcp", c.Headers.Get("To-Path"))
}

func TestErrors(t *testing.T) {
	for _, e := range []error{ErrConnectTimeout, ErrRelayConnectTimeout, ErrIncomingConnectTimeout, ErrBindSessionTimeout, ErrAuthTimeout} {
		wrapped := fmt.Errorf("dialing: %w", e)
		assert.ErrorIs(t, wrapped, ErrTimeout)
		assert.ErrorIs(t, wrapped, context.DeadlineExceeded)
		assert.ErrorIs(t, wrapped, e)
		var te interface{ Timeout() bool }
		require.ErrorAs(t, wrapped, &te)
		assert.True(t, te.Timeout())
	}
	assert.NotErrorIs(t, ErrConnectTimeout, ErrBindSessionTimeout)
	assert.Equal(t, "msrp: bind session timed out", ErrBindSessionTimeout.Error())

	err := fmt.Errorf("bind: %w", &TransactionError{Code: 481})
	var te *TransactionError
	require.ErrorAs(t, err, &te)
	assert.Equal(t, 481, te.Code)
	assert.Equal(t, "msrp: 481 No Such Session", te.Error())
	assert.Equal(t, "msrp: 499 Odd", (&TransactionError{Code: 499, Comment: "Odd"}).Error())
	assert.Equal(t, "msrp: status 299", (&TransactionError{Code: 299}).Error())
	assert.True(t, (&TransactionError{Code: 408}).Timeout())
	assert.False(t, errors.Is(err, ErrTimeout))

	pe := &ChunkParseError{Err: ErrChunkTooLarge, Chunk: &Chunk{TransactionID: "abcd"}}
	assert.Equal(t, "msrp: chunk too large (transaction abcd)", pe.Error())
	assert.ErrorIs(t, fmt.Errorf("read: %w", pe), ErrChunkTooLarge)
	assert.Equal(t, "", StatusText(299))
	assert.Equal(t, "Session Already Bound", StatusText(506))
}

// encodeUnchecked writes a chunk as it is, valid or not, as a peer that
// breaks the rules would: To-Path and From-Path first, the other headers in
// their order, a blank line before a body or after a Content-Type.
func encodeUnchecked(c *Chunk) []byte {
	b := append(c.appendStartLine(nil), "\r\n"...)
	b = c.Headers.appendNamed(b, HeaderToPath)
	b = c.Headers.appendNamed(b, HeaderFromPath)
	for _, f := range c.Headers {
		if !strings.EqualFold(f.Name, HeaderToPath) && !strings.EqualFold(f.Name, HeaderFromPath) {
			b = appendHeaderLine(b, f)
		}
	}
	if c.hasBodySection() {
		b = append(append(append(b, "\r\n"...), c.Data...), "\r\n"...)
	}
	return append(append(append(b, "-------"...), c.TransactionID...), c.flag(), '\r', '\n')
}
