package msrp

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// crlf turns the readable "\n" line ends of a test fixture into CRLF.
func crlf(s string) []byte { return []byte(strings.ReplaceAll(s, "\n", "\r\n")) }

// Exchanges from RFC 4975 (§7.1, §7.1.2, §5.1) and RFC 4976 (§5), written
// out by hand. Each is in the canonical form Encode produces, so the round
// trip is checked byte for byte.
var rfcExamples = []struct {
	name   string
	raw    []byte
	tid    string
	method string
	code   int
	flag   byte
	body   string
	nhdr   int
}{
	{
		name: "SEND with body",
		raw: crlf(`MSRP a786hjs2 SEND
To-Path: msrp://biloxi.example.com:12763/kjhd37s2s20w2a;tcp
From-Path: msrp://atlanta.example.com:7654/jshA7weztas;tcp
Message-ID: 87652491
Byte-Range: 1-25/25
Content-Type: text/plain

Hey Bob, are you there?
` + "\n" + `-------a786hjs2$
`),
		tid: "a786hjs2", method: "SEND", flag: '$', body: "Hey Bob, are you there?\r\n", nhdr: 5,
	},
	{
		name: "200 response",
		raw: crlf(`MSRP a786hjs2 200 OK
To-Path: msrp://atlanta.example.com:7654/jshA7weztas;tcp
From-Path: msrp://biloxi.example.com:12763/kjhd37s2s20w2a;tcp
-------a786hjs2$
`),
		tid: "a786hjs2", code: 200, flag: '$', nhdr: 2,
	},
	{
		name: "success REPORT",
		raw: crlf(`MSRP dkei38sd REPORT
To-Path: msrp://alice.example.com:7777/iau39soe2843z;tcp
From-Path: msrp://bob.example.com:8888/9di4eae923wzd;tcp
Message-ID: 12339sdqwer
Byte-Range: 1-106/106
Status: 000 200 OK
-------dkei38sd$
`),
		tid: "dkei38sd", method: "REPORT", flag: '$', nhdr: 5,
	},
	{
		name: "interrupted chunk",
		raw: crlf(`MSRP d93kswow SEND
To-Path: msrp://bob.example.com:8888/9di4eae923wzd;tcp
From-Path: msrp://alicepc.example.com:7777/iau39soe2843z;tcp
Message-ID: 12339sdqwer
Byte-Range: 1-*/4096
Content-Type: text/html

<html><body><p>first part of a longer message, more follows</p>
-------d93kswow+
`),
		tid: "d93kswow", method: "SEND", flag: '+', body: "<html><body><p>first part of a longer message, more follows</p>", nhdr: 5,
	},
	{
		name: "aborted chunk",
		raw: crlf(`MSRP wj3jso38 SEND
To-Path: msrp://bob.example.com:8888/9di4eae923wzd;tcp
From-Path: msrp://alicepc.example.com:7777/iau39soe2843z;tcp
Message-ID: 12339sdqwer
Byte-Range: 4097-*/8192
Content-Type: text/html

tail
-------wj3jso38#
`),
		tid: "wj3jso38", method: "SEND", flag: '#', body: "tail", nhdr: 5,
	},
	{
		name: "AUTH challenge",
		raw: crlf(`MSRP 49fh 401 Unauthorized
To-Path: msrps://alice.example.com:9892/98cjs;tcp
From-Path: msrps://alice@intra.example.com;tcp
WWW-Authenticate: Digest realm="intra.example.com", qop="auth", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093"
-------49fh$
`),
		tid: "49fh", code: 401, flag: '$', nhdr: 3,
	},
	{
		name: "AUTH with credentials",
		raw: crlf(`MSRP 49fi AUTH
To-Path: msrps://alice@intra.example.com;tcp
From-Path: msrps://alice.example.com:9892/98cjs;tcp
Authorization: Digest username="Alice", realm="intra.example.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", qop=auth, nc=00000001, cnonce="0a4f113b", response="6629fae49393a05397450978507c4ef1"
-------49fi$
`),
		tid: "49fi", method: "AUTH", flag: '$', nhdr: 3,
	},
	{
		name: "AUTH accepted",
		raw: crlf(`MSRP 49fi 200 OK
To-Path: msrps://alice.example.com:9892/98cjs;tcp
From-Path: msrps://alice@intra.example.com;tcp
Use-Path: msrps://relay.example.com:2855/hjdhfsesdf;tcp
Expires: 900
-------49fi$
`),
		tid: "49fi", code: 200, flag: '$', nhdr: 4,
	},
	{
		name: "empty binding SEND",
		raw: crlf(`MSRP 39c1eb1719c1a25c SEND
To-Path: msrp://127.0.0.1:28555/server;tcp
From-Path: msrp://127.0.0.1:2855/client;tcp
Byte-Range: 1-0/0
Message-ID: 6a080543fe1a5c50
-------39c1eb1719c1a25c$
`),
		tid: "39c1eb1719c1a25c", method: "SEND", flag: '$', nhdr: 4,
	},
}

// parseAll feeds data to p in the given pieces and collects chunks and errors.
func parseAll(t testing.TB, p *Parser, pieces [][]byte) ([]*Chunk, []error) {
	t.Helper()
	var chunks []*Chunk
	var errs []error
	for _, piece := range pieces {
		for len(piece) > 0 {
			c, n, err := p.Feed(piece)
			require.True(t, n > 0 || (c == nil && err == nil && len(piece) == 0), "Feed made no progress")
			require.LessOrEqual(t, n, len(piece))
			piece = piece[n:]
			if c != nil {
				chunks = append(chunks, c)
			}
			if err != nil {
				errs = append(errs, err)
			}
		}
	}
	return chunks, errs
}

func parseOne(t *testing.T, pieces ...[]byte) *Chunk {
	t.Helper()
	var p Parser
	chunks, errs := parseAll(t, &p, pieces)
	require.Empty(t, errs)
	require.Len(t, chunks, 1)
	require.False(t, p.InChunk())
	return chunks[0]
}

func TestParseRFCExamples(t *testing.T) {
	for _, tc := range rfcExamples {
		t.Run(tc.name, func(t *testing.T) {
			c := parseOne(t, tc.raw)
			assert.Equal(t, tc.tid, c.TransactionID)
			assert.Equal(t, tc.method, c.Method)
			assert.Equal(t, tc.code, c.Code)
			assert.Equal(t, tc.flag, c.ContFlag)
			assert.Equal(t, tc.body, string(c.Data))
			assert.Len(t, c.Headers, tc.nhdr)
			if tc.body == "" {
				assert.Nil(t, c.Data)
			}

			// Encode gives back the exact bytes.
			out, err := c.Encode(nil)
			require.NoError(t, err)
			assert.Equal(t, string(tc.raw), string(out))
		})
	}
}

// Every split point of every example, and byte-by-byte feeding, give the same
// chunk: the end-line is found even when a read ends inside it.
func TestParseEverySplit(t *testing.T) {
	for _, tc := range rfcExamples {
		t.Run(tc.name, func(t *testing.T) {
			want := parseOne(t, tc.raw)
			for i := 1; i < len(tc.raw); i++ {
				got := parseOne(t, tc.raw[:i], tc.raw[i:])
				require.Equal(t, want, got, "split at %d", i)
			}
			for i := 1; i < len(tc.raw); i++ {
				for j := i + 1; j < len(tc.raw); j += 7 {
					got := parseOne(t, tc.raw[:i], tc.raw[i:j], tc.raw[j:])
					require.Equal(t, want, got, "split at %d and %d", i, j)
				}
			}
			bytewise := make([][]byte, len(tc.raw))
			for i := range tc.raw {
				bytewise[i] = tc.raw[i : i+1]
			}
			require.Equal(t, want, parseOne(t, bytewise...))
		})
	}
}

func TestParseStreamOfChunks(t *testing.T) {
	var stream []byte
	for _, tc := range rfcExamples {
		stream = append(stream, tc.raw...)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 200 {
		var pieces [][]byte
		for rest := stream; len(rest) > 0; {
			n := min(len(rest), 1+rng.IntN(64))
			pieces = append(pieces, rest[:n])
			rest = rest[n:]
		}
		var p Parser
		chunks, errs := parseAll(t, &p, pieces)
		require.Empty(t, errs, "round %d", round)
		require.Len(t, chunks, len(rfcExamples))
		for i, c := range chunks {
			assert.Equal(t, rfcExamples[i].tid, c.TransactionID)
		}
	}
}

// Bodies that hold things resembling an end-line stay intact.
func TestParseBodyLookalikes(t *testing.T) {
	bodies := []string{
		"-------",
		"----------------------------------------",
		"\r\n-------",
		"\r\n-------abcd1234$\r\n",      // another chunk's end-line
		"\r\n-------tid12345\r\n",       // our tid without a flag
		"\r\n-------tid12345x\r\n",      // our tid, bad flag
		"\r\n-------tid12345$x",         // flag not followed by CRLF
		"\r\n-------tid12345$\rx",       // flag, CR, no LF
		"\r\n-------tid1234$\r\n",       // a prefix of our tid
		"\r\n-------tid123456$\r\n",     // our tid as a prefix of another
		"-------tid12345$\r\nMSRP x",    // end-line without the leading CRLF
		"\r\r\n\r\n-------tid1234\r\n-", // many partial starts
		strings.Repeat("\r\n------", 100),
		"MSRP tid12345 SEND\r\nTo-Path: x\r\n",
	}
	for _, body := range bodies {
		raw := crlf("MSRP tid12345 SEND\nTo-Path: msrp://a/b;tcp\nFrom-Path: msrp://c/d;tcp\nContent-Type: text/plain\n\n")
		raw = append(raw, body...)
		raw = append(raw, "\r\n-------tid12345$\r\n"...)
		for i := 1; i < len(raw); i++ {
			c := parseOne(t, raw[:i], raw[i:])
			require.Equal(t, body, string(c.Data), "body %q split at %d", body, i)
		}
	}
}

func TestParseLargeBody(t *testing.T) {
	// Bodies over 16 KiB and 64 KiB, arriving in TCP-sized reads (msrplib 0.10.0 bug).
	for _, size := range []int{16<<10 + 1, 64<<10 + 3, 1 << 20} {
		body := bytes.Repeat([]byte("0123456789abcdef\r\n-------"), size/25+1)[:size]
		c := &Chunk{TransactionID: "bigtid01", Method: "SEND", Data: body, ContFlag: '+',
			Headers: Header{{"To-Path", "msrp://a/b;tcp"}, {"From-Path", "msrp://c/d;tcp"},
				{"Byte-Range", "1-*/*"}, {"Content-Type", "application/octet-stream"}}}
		raw, err := c.Encode(nil)
		require.NoError(t, err)
		for _, step := range []int{1000, 4096, 32 << 10} {
			var pieces [][]byte
			for rest := raw; len(rest) > 0; rest = rest[min(step, len(rest)):] {
				pieces = append(pieces, rest[:min(step, len(rest))])
			}
			got := parseOne(t, pieces...)
			require.Equal(t, c, got)
		}
	}
}

func TestParseBareLF(t *testing.T) {
	c := parseOne(t, []byte("MSRP abcd SEND\nTo-Path: msrp://a/b;tcp\nFrom-Path: msrp://c/d;tcp\n-------abcd$\n"))
	assert.Equal(t, "abcd", c.TransactionID)
	assert.Equal(t, Header{{"To-Path", "msrp://a/b;tcp"}, {"From-Path", "msrp://c/d;tcp"}}, c.Headers)
}

func TestParseHeaderValueWhitespace(t *testing.T) {
	c := parseOne(t, crlf("MSRP abcd SEND\nTo-Path:msrp://a/b;tcp\nFrom-Path: \t msrp://c/d;tcp\nX-Empty:\n-------abcd$\n"))
	assert.Equal(t, Header{{"To-Path", "msrp://a/b;tcp"}, {"From-Path", "msrp://c/d;tcp"}, {"X-Empty", ""}}, c.Headers)
}

func TestParseGarbageResync(t *testing.T) {
	good := rfcExamples[1].raw
	stream := append([]byte("hello\r\nMSRP x SEND\r\nmsrp abcd SEND\r\nMSRP abcd send\r\n\r\nMSRP abcd 20\r\n"), good...)
	stream = append(stream, "-------a786hjs2$\r\n"...)
	stream = append(stream, good...)
	var p Parser
	chunks, errs := parseAll(t, &p, [][]byte{stream})
	require.Len(t, chunks, 2)
	require.Len(t, errs, 6)
	for _, err := range errs {
		var pe *ChunkParseError
		require.ErrorAs(t, err, &pe)
		assert.ErrorIs(t, err, ErrBadStartLine)
		assert.Nil(t, pe.Chunk)
		assert.NotEmpty(t, pe.Data)
	}
}

func TestParseMalformedHeaderKeepsFraming(t *testing.T) {
	raw := crlf("MSRP abcd SEND\nTo-Path: msrp://a/b;tcp\nno colon here\nBad Name: x\nFrom-Path: msrp://c/d;tcp\nContent-Type: text/plain\n\nbody\n-------abcd$\n")
	raw = append(raw, rfcExamples[1].raw...)
	var p Parser
	chunks, errs := parseAll(t, &p, [][]byte{raw})
	require.Len(t, errs, 1)
	require.Len(t, chunks, 1, "the next chunk is read normally")
	var pe *ChunkParseError
	require.ErrorAs(t, errs[0], &pe)
	assert.ErrorIs(t, pe, ErrMalformedHeader)
	assert.Equal(t, "no colon here", string(pe.Data))
	require.NotNil(t, pe.Chunk, "the chunk is there so that a 400 can be sent")
	assert.Equal(t, "abcd", pe.Chunk.TransactionID)
	assert.Equal(t, "body", string(pe.Chunk.Data))
	assert.Equal(t, Header{{"To-Path", "msrp://a/b;tcp"}, {"From-Path", "msrp://c/d;tcp"}, {"Content-Type", "text/plain"}}, pe.Chunk.Headers)
	resp, err := NewResponse(pe.Chunk, 400, "")
	require.NoError(t, err)
	assert.Equal(t, "MSRP abcd 400 Bad Request", resp.String())
}

func TestParseControlCharacterInHeader(t *testing.T) {
	var p Parser
	_, errs := parseAll(t, &p, [][]byte{crlf("MSRP abcd SEND\nTo-Path: msrp://a/b;tcp\rX\nFrom-Path: msrp://c/d;tcp\n-------abcd$\n")})
	require.Len(t, errs, 1)
	assert.ErrorIs(t, errs[0], ErrMalformedHeader)
}

func TestParseTooManyHeaders(t *testing.T) {
	var b strings.Builder
	b.WriteString("MSRP abcd SEND\nTo-Path: msrp://a/b;tcp\nFrom-Path: msrp://c/d;tcp\n")
	for range 10 {
		b.WriteString("X-H: v\n")
	}
	b.WriteString("-------abcd$\n")
	p := Parser{Limits: Limits{MaxHeaders: 5}}
	chunks, errs := parseAll(t, &p, [][]byte{crlf(b.String())})
	require.Empty(t, chunks)
	require.Len(t, errs, 1)
	var pe *ChunkParseError
	require.ErrorAs(t, errs[0], &pe)
	assert.ErrorIs(t, pe, ErrTooManyHeaders)
	assert.Len(t, pe.Chunk.Headers, 5)
}

func TestParseLineTooLong(t *testing.T) {
	long := strings.Repeat("x", 200)
	t.Run("start line", func(t *testing.T) {
		p := Parser{Limits: Limits{MaxLineLength: 100}}
		stream := append([]byte("MSRP "+long+"\r\n"), rfcExamples[1].raw...)
		chunks, errs := parseAll(t, &p, [][]byte{stream})
		require.Len(t, chunks, 1)
		require.Len(t, errs, 1)
		assert.ErrorIs(t, errs[0], ErrLineTooLong)
		var pe *ChunkParseError
		require.ErrorAs(t, errs[0], &pe)
		assert.LessOrEqual(t, len(pe.Data), 100)
	})
	t.Run("header line, fed byte by byte", func(t *testing.T) {
		p := Parser{Limits: Limits{MaxLineLength: 100}}
		raw := crlf("MSRP abcd SEND\nTo-Path: msrp://a/b;tcp\nX-Long: " + long + "\nFrom-Path: msrp://c/d;tcp\n-------abcd$\n")
		var pieces [][]byte
		for i := range raw {
			pieces = append(pieces, raw[i:i+1])
		}
		chunks, errs := parseAll(t, &p, pieces)
		require.Empty(t, chunks)
		require.Len(t, errs, 1)
		var pe *ChunkParseError
		require.ErrorAs(t, errs[0], &pe)
		assert.ErrorIs(t, pe, ErrLineTooLong)
		assert.Equal(t, Header{{"To-Path", "msrp://a/b;tcp"}, {"From-Path", "msrp://c/d;tcp"}}, pe.Chunk.Headers)
	})
}

func TestParseChunkTooLarge(t *testing.T) {
	body := bytes.Repeat([]byte("z"), 10000)
	big := &Chunk{TransactionID: "bigone12", Method: "SEND", Data: body, ContFlag: '$',
		Headers: Header{{"To-Path", "msrp://a/b;tcp"}, {"From-Path", "msrp://c/d;tcp"}, {"Content-Type", "text/plain"}}}
	raw, err := big.Encode(nil)
	require.NoError(t, err)
	stream := append(raw, rfcExamples[0].raw...)

	for _, step := range []int{1, 100, 4096, len(stream)} {
		p := Parser{Limits: Limits{MaxChunkSize: 4096}}
		var pieces [][]byte
		for rest := stream; len(rest) > 0; rest = rest[min(step, len(rest)):] {
			pieces = append(pieces, rest[:min(step, len(rest))])
		}
		// The error comes as soon as the cap is crossed, before the chunk ends.
		var firstErrAt int
		consumed := 0
		var chunks []*Chunk
		var errs []error
		for _, piece := range pieces {
			for len(piece) > 0 {
				c, n, err := p.Feed(piece)
				consumed += n
				piece = piece[n:]
				if err != nil {
					errs = append(errs, err)
					firstErrAt = consumed
				}
				if c != nil {
					chunks = append(chunks, c)
				}
				assert.LessOrEqual(t, cap(p.acc), 4096, "the body buffer never exceeds the cap")
			}
		}
		require.Len(t, errs, 1, "step %d", step)
		assert.ErrorIs(t, errs[0], ErrChunkTooLarge)
		// Reported by the Feed call that crossed the cap, not at the end-line.
		assert.True(t, firstErrAt <= 4096+step || step >= len(raw), "step %d: error at byte %d", step, firstErrAt)
		var pe *ChunkParseError
		require.ErrorAs(t, errs[0], &pe)
		require.NotNil(t, pe.Chunk)
		assert.Equal(t, "bigone12", pe.Chunk.TransactionID)
		require.Len(t, chunks, 1, "the connection keeps working after the oversized chunk")
		assert.Equal(t, "a786hjs2", chunks[0].TransactionID)
	}
}

func TestParseTooLargeInHeaders(t *testing.T) {
	var b strings.Builder
	b.WriteString("MSRP abcd SEND\nTo-Path: msrp://a/b;tcp\n")
	for range 50 {
		b.WriteString("X-Pad: " + strings.Repeat("p", 90) + "\n")
	}
	b.WriteString("-------abcd$\n")
	stream := append(crlf(b.String()), rfcExamples[1].raw...)
	p := Parser{Limits: Limits{MaxChunkSize: 1000, MaxHeaders: 1000}}
	chunks, errs := parseAll(t, &p, [][]byte{stream})
	require.Len(t, errs, 1)
	assert.ErrorIs(t, errs[0], ErrChunkTooLarge)
	require.Len(t, chunks, 1)
	assert.Equal(t, 200, chunks[0].Code)
}

func TestParseTruncatedChunk(t *testing.T) {
	stream := crlf("MSRP abcd SEND\nTo-Path: msrp://a/b;tcp\n")
	stream = append(stream, rfcExamples[1].raw...)
	var p Parser
	chunks, errs := parseAll(t, &p, [][]byte{stream})
	require.Len(t, errs, 1)
	assert.ErrorIs(t, errs[0], ErrTruncatedChunk)
	var pe *ChunkParseError
	require.ErrorAs(t, errs[0], &pe)
	assert.Equal(t, "abcd", pe.Chunk.TransactionID)
	require.Len(t, chunks, 1)
	assert.Equal(t, "a786hjs2", chunks[0].TransactionID)
}

func TestParseInChunkAndReset(t *testing.T) {
	var p Parser
	raw := rfcExamples[0].raw
	_, n, err := p.Feed(raw[:len(raw)-3])
	require.NoError(t, err)
	assert.Equal(t, len(raw)-3, n)
	assert.True(t, p.InChunk())
	p.Reset()
	assert.False(t, p.InChunk())
	assert.Equal(t, "a786hjs2", parseOne(t, raw).TransactionID)
}

// A chunk's data must not alias the caller's buffer.
func TestParseDoesNotAlias(t *testing.T) {
	raw := append([]byte(nil), rfcExamples[0].raw...)
	var p Parser
	c, _, err := p.Feed(raw)
	require.NoError(t, err)
	for i := range raw {
		raw[i] = 'X'
	}
	assert.Equal(t, "Hey Bob, are you there?\r\n", string(c.Data))
	assert.Equal(t, "a786hjs2", c.TransactionID)
}

// The buffers of a chunk with a huge header section are not kept afterwards.
func TestParseReleasesBuffers(t *testing.T) {
	var b strings.Builder
	b.WriteString("MSRP abcd SEND\n")
	for range 60 {
		b.WriteString("X-Pad: " + strings.Repeat("p", 10000) + "\n")
	}
	b.WriteString("-------abcd$\n")
	var p Parser
	parseAll(t, &p, [][]byte{crlf(b.String())})
	assert.LessOrEqual(t, cap(p.hdr), heldBufferLimit)
	assert.Nil(t, p.data)
}

func TestParseErrorMessage(t *testing.T) {
	var p Parser
	_, _, err := p.Feed([]byte("GET / HTTP/1.1\r\n"))
	require.Error(t, err)
	assert.Equal(t, `msrp: malformed start line: "GET / HTTP/1.1"`, err.Error())
	assert.True(t, errors.Is(err, ErrBadStartLine))
}

// A chunk refused at its head (Parser.checkHead) has its body
// skipped, whatever the body holds: end-line lookalikes (no CRLF before
// them, a wrong flag, no CRLF after the flag, another transaction id), and
// the stream stays in step: the chunks after it come out whole, fed at once
// or a byte at a time.
func TestParserHeadRefusalKeepsTheStreamInStep(t *testing.T) {
	refusal := errors.New("not for us")
	head := "MSRP abcd1234 SEND\r\nTo-Path: msrp://x/s;tcp\r\nFrom-Path: msrp://y/t;tcp\r\nContent-Type: text/plain\r\n\r\n"
	bodies := []string{
		"-------abcd1234$\r\n",                            // at the body's start, no CRLF before it
		"x-------abcd1234$\r\ny",                          // mid-line
		"a\r\n-------abcd1234x\r\nb",                      // wrong flag
		"a\r\n-------abcd1234$x\r\n",                      // no CRLF after the flag
		"a\r\n-------abcd12345$\r\n",                      // a longer tid
		"a\r\n-------abcd123$\r\n",                        // a shorter tid
		"\r\n-------abcd1234",                             // cut at the marker, then more body
		"MSRP efgh5678 SEND\r\nTo-Path: x\r\n\r\n",        // a chunk's start inside the body
		strings.Repeat("\r\n-------abcd1234\r", 50) + "z", // many near-misses
	}
	next := "MSRP efgh5678 SEND\r\nTo-Path: msrp://x/s;tcp\r\nFrom-Path: msrp://y/t;tcp\r\nContent-Type: text/plain\r\n\r\nnext body\r\n-------efgh5678$\r\n"
	for _, body := range bodies {
		stream := head + body + "\r\n-------abcd1234+\r\n" + next
		for _, step := range []int{len(stream), 1, 7} {
			p := &Parser{checkHead: func(c *Chunk) error {
				if c.TransactionID == "abcd1234" {
					return refusal
				}
				return nil
			}}
			var got []*Chunk
			var errs []error
			b := []byte(stream)
			for len(b) > 0 {
				piece := b[:min(step, len(b))]
				b = b[len(piece):]
				for len(piece) > 0 {
					c, n, err := p.Feed(piece)
					piece = piece[n:]
					if c != nil {
						got = append(got, c)
					}
					if err != nil {
						errs = append(errs, err)
					}
				}
			}
			require.Len(t, errs, 1, "body %q step %d: %v", body, step, errs)
			assert.ErrorIs(t, errs[0], refusal)
			var pe *ChunkParseError
			require.ErrorAs(t, errs[0], &pe)
			assert.Nil(t, pe.Chunk.Data, "the refused body is not kept")
			require.Len(t, got, 1, "body %q step %d", body, step)
			assert.Equal(t, "efgh5678", got[0].TransactionID)
			assert.Equal(t, "next body", string(got[0].Data))
			assert.False(t, p.InChunk())
		}
	}
}
