package msrp

import (
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/go-msrp/msrp/internal/digest"
)

// Small limits so that the fuzzer reaches them.
func fuzzParser() *Parser {
	return &Parser{Limits: Limits{MaxLineLength: 200, MaxHeaders: 8, MaxChunkSize: 2048}}
}

type parseEvent struct {
	chunk *Chunk
	cause error
}

// feedFuzz feeds data in random pieces and returns what came out, checking
// the parser's invariants at every step.
func feedFuzz(t *testing.T, p *Parser, data []byte, rng *rand.Rand) []parseEvent {
	var events []parseEvent
	for len(data) > 0 {
		size := len(data)
		if rng != nil {
			size = min(len(data), 1+rng.IntN(64))
		}
		piece := data[:size]
		data = data[size:]
		for len(piece) > 0 {
			c, n, err := p.Feed(piece)
			if n <= 0 || n > len(piece) {
				t.Fatalf("Feed consumed %d of %d bytes", n, len(piece))
			}
			piece = piece[n:]
			if err != nil {
				var pe *ChunkParseError
				if !errors.As(err, &pe) {
					t.Fatalf("error of type %T: %v", err, err)
				}
				if len(pe.Data) > maxErrorData {
					t.Fatalf("error keeps %d bytes", len(pe.Data))
				}
				events = append(events, parseEvent{chunk: pe.Chunk, cause: pe.Err})
			}
			if c != nil {
				events = append(events, parseEvent{chunk: c})
			}
			// Memory stays bounded by the limits, whatever the input.
			if cap(p.acc) > p.MaxChunkSize || len(p.hold) > 2*(len(p.marker)+3) ||
				len(p.hdr) > p.MaxChunkSize+p.MaxLineLength+2 {
				t.Fatalf("buffers grew past the limits: body %d hold %d hdr %d", cap(p.acc), len(p.hold), len(p.hdr))
			}
		}
	}
	return events
}

// canonical orders headers as Encode writes them: To-Path, From-Path, the
// others, then, before a body, the MIME headers and Content-Type.
func canonical(c *Chunk) *Chunk {
	d := c.Clone()
	d.Headers = d.Headers[:0]
	body := c.hasBodySection()
	for _, place := range []headerPlace{placePath, placeFromPath, placeOther, placeMIME, placeContentType} {
		for _, f := range c.Headers {
			if placeOf(f.Name, body) == place {
				d.Headers = append(d.Headers, f)
			}
		}
	}
	return d
}

func FuzzParser(f *testing.F) {
	for _, tc := range rfcExamples {
		f.Add(tc.raw, uint64(1))
	}
	f.Fuzz(func(t *testing.T, data []byte, seed uint64) {
		whole := feedFuzz(t, fuzzParser(), data, nil)
		split := feedFuzz(t, fuzzParser(), data, rand.New(rand.NewPCG(seed, seed>>1)))
		if len(whole) != len(split) {
			t.Fatalf("%d events fed whole, %d fed in pieces", len(whole), len(split))
		}
		for i := range whole {
			w, s := whole[i], split[i]
			if w.cause != s.cause || (w.chunk == nil) != (s.chunk == nil) {
				t.Fatalf("event %d: %v/%v whole, %v/%v in pieces", i, w.cause, w.chunk, s.cause, s.chunk)
			}
			if w.chunk != nil && (w.chunk.String() != s.chunk.String() || string(w.chunk.Data) != string(s.chunk.Data) ||
				len(w.chunk.Headers) != len(s.chunk.Headers) || w.chunk.ContFlag != s.chunk.ContFlag) {
				t.Fatalf("event %d: chunks differ", i)
			}
			if w.cause != nil || w.chunk == nil {
				continue
			}
			// The parser is lenient and the encoder strict: a chunk that
			// parsed either is refused, or encodes as valid MSRP and
			// parses back to itself.
			raw, err := w.chunk.Encode(nil)
			if err != nil {
				if !errors.Is(err, ErrBodyContainsEndLine) && !errors.Is(err, ErrInvalidChunk) {
					t.Fatalf("parsed chunk does not encode: %v", err)
				}
				continue
			}
			if err := checkABNF(raw); err != nil {
				t.Fatalf("encoded %q: %v", raw, err)
			}
			back := feedFuzz(t, &Parser{Limits: Limits{MaxLineLength: 200, MaxHeaders: 8, MaxChunkSize: len(raw)}}, raw, nil)
			if len(back) != 1 || back[0].cause != nil {
				t.Fatalf("re-parse of %q gave %v", raw, back)
			}
			want, got := canonical(w.chunk), back[0].chunk
			if got.String() != want.String() || string(got.Data) != string(want.Data) || got.ContFlag != want.ContFlag ||
				len(got.Headers) != len(want.Headers) {
				t.Fatalf("round trip changed the chunk:\n%q\n%q", raw, back[0].chunk.String())
			}
			for j := range got.Headers {
				if got.Headers[j] != want.Headers[j] {
					t.Fatalf("round trip changed header %d: %v → %v", j, want.Headers[j], got.Headers[j])
				}
			}
		}
	})
}

func FuzzParseURI(f *testing.F) {
	for _, s := range []string{
		"msrp://atlanta.example.com:7654/jshA7weztas;tcp",
		"msrps://alice@intra.example.com;tcp",
		"msrp://[::1]:2855/s1;tcp;foo=bar;baz",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseURI(s)
		if err != nil {
			return
		}
		printed := u.String()
		v, err := ParseURI(printed)
		if err != nil {
			t.Fatalf("%q printed as %q, which does not parse: %v", s, printed, err)
		}
		if !u.Equal(v) || u.User != v.User || len(u.Params) != len(v.Params) || v.String() != printed {
			t.Fatalf("%q → %q → %+v differs from %+v", s, printed, v, u)
		}
		// The scheme is case-insensitive and printed in lower case; the rest
		// is kept as written.
		if (strings.HasPrefix(s, "msrp://") || strings.HasPrefix(s, "msrps://")) && printed != s {
			t.Fatalf("%q printed as %q", s, printed)
		}
	})
}

// FuzzHeaderValues runs every typed accessor on arbitrary values: none may
// panic, and the values that decode print back to the same value.
func FuzzHeaderValues(f *testing.F) {
	for _, s := range []string{"1-25/25", "1-*/*", "000 200 OK", "yes", "partial", "text/plain; charset=utf-8",
		`Digest realm="r", nonce="n\"x", qop=auth`, "900", "msrp://a/b;tcp msrps://c:1;tcp"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		c := &Chunk{TransactionID: "abcd", Method: "SEND"}
		for _, name := range []string{HeaderToPath, HeaderFromPath, HeaderUsePath, HeaderMessageID, HeaderByteRange,
			HeaderStatus, HeaderSuccessReport, HeaderFailureReport, HeaderContentType, HeaderExpires,
			HeaderMinExpires, HeaderMaxExpires, HeaderWWWAuthenticate, HeaderAuthorization, HeaderAuthenticationInfo} {
			c.Headers.Set(name, v)
		}
		_, _ = c.ToPath()
		_, _ = c.MessageID()
		_, _ = c.SuccessReport()
		_, _ = c.FailureReport()
		_, _ = c.ContentType()
		_, _ = c.Expires()
		_, _ = c.WWWAuthenticate()
		_, _ = c.Authorization()
		_, _ = c.AuthenticationInfo()
		if r, err := c.ByteRange(); err == nil {
			c.Headers.Set(HeaderByteRange, r.String())
			if again, err := c.ByteRange(); err != nil || again != r {
				t.Fatalf("Byte-Range %q printed as %q decodes to %v, %v", v, r.String(), again, err)
			}
		}
		if s, err := c.Status(); err == nil {
			c.Headers.Set(HeaderStatus, s.String())
			if again, err := c.Status(); err != nil || again != s {
				t.Fatalf("Status %q printed as %q decodes to %v, %v", v, s.String(), again, err)
			}
		}
		if p, err := c.UsePath(); err == nil {
			if _, err := ParsePath(FormatPath(p)); err != nil {
				t.Fatalf("path %q printed as %q does not parse", v, FormatPath(p))
			}
		}
	})
}

// FuzzDigestChallenge parses arbitrary WWW-Authenticate values as a relay's
// challenge: no panic, and whatever is answered can be read back.
func FuzzDigestChallenge(f *testing.F) {
	for _, s := range []string{
		`Digest realm="msrp-test", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", qop="auth"`,
		`Digest realm="r", nonce="n", opaque="o", algorithm=MD5-sess, qop="auth,auth-int", stale=true`,
		`digest nonce="a\"b", realm=""`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		resp := &Chunk{TransactionID: "abcd", Code: 401, Headers: Header{{HeaderWWWAuthenticate, v}}}
		ch, err := challengeOf(resp)
		if err != nil {
			return
		}
		a, err := digest.Respond(ch, digest.Credentials{Username: "alice", Password: "pw", Method: MethodAUTH, URI: "msrp://relay;tcp"})
		if err != nil {
			return
		}
		req := &Chunk{TransactionID: "abcd", Method: MethodAUTH, Headers: Header{{HeaderAuthorization, a.Header()}}}
		p, err := req.Authorization()
		if err != nil {
			if validText(a.Header()) {
				t.Fatalf("our Authorization %q does not parse: %v", a.Header(), err)
			}
			return
		}
		if nonce, _ := p.Get("nonce"); nonce != ch.Nonce {
			t.Fatalf("nonce %q came back as %q", ch.Nonce, nonce)
		}
	})
}

// FuzzSession feeds arbitrary bytes to a bound session, as a hostile peer
// would, then hangs up: the session must not panic, must answer without
// blocking, and must end with all its goroutines once the peer is gone.
func FuzzSession(f *testing.F) {
	local := "msrp://127.0.0.1:1/aaaa;tcp"
	peer := "msrp://127.0.0.1:2/bbbb;tcp"
	send := func(tid, extra, body string, flag byte) string {
		return "MSRP " + tid + " SEND\r\nTo-Path: " + local + "\r\nFrom-Path: " + peer + "\r\n" + extra +
			"Content-Type: text/plain\r\n\r\n" + body + "\r\n-------" + tid + string(flag) + "\r\n"
	}
	f.Add([]byte(send("t1aa", "Message-ID: m1\r\nByte-Range: 1-5/10\r\n", "hello", '+') +
		send("t2aa", "Message-ID: m1\r\nByte-Range: 6-10/10\r\nSuccess-Report: yes\r\n", "world", '$')))
	f.Add([]byte(send("t3aa", "Failure-Report: partial\r\nByte-Range: x\r\n", "bad", '$')))
	f.Add([]byte("MSRP t4aa REPORT\r\nTo-Path: " + local + "\r\nFrom-Path: " + peer + "\r\nStatus: 000 200 OK\r\n-------t4aa$\r\n" +
		"MSRP t5aa NICKNAME\r\nTo-Path: " + local + "\r\nFrom-Path: " + peer + "\r\nUse-Nickname: \"x\"\r\n-------t5aa$\r\n" +
		"MSRP t6aa 200 OK\r\nTo-Path: " + local + "\r\n-------t6aa$\r\n"))
	f.Add([]byte(send("t7aa", "Message-ID: m2\r\nByte-Range: 4097-*/*\r\n", "late", '#') + "garbage\r\n\r\nMSRP x"))
	// Byte-Ranges that disagree with their bodies: 400, nothing stored.
	f.Add([]byte(send("t8aa", "Message-ID: m3\r\nByte-Range: 1-4/8\r\n", "0123456789", '+') +
		send("t9aa", "Message-ID: m3\r\nByte-Range: 5-8/8\r\n", "4567", '$')))
	f.Add([]byte(send("taaa", "Message-ID: m4\r\nByte-Range: 1-2048/65536\r\n", strings.Repeat("z", 300), '+') +
		send("tbaa", "Message-ID: m4\r\nByte-Range: 1-4/8\r\n", "abcd", '$') +
		send("tcaa", "Message-ID: m5\r\nByte-Range: 1-4/4\r\n", "abcd", '+') +
		send("tdaa", "Message-ID: m5\r\nByte-Range: 5-4/4\r\n", "", '$')))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, b := net.Pipe()
		localURI, _ := ParseURI(local)
		peerURI, _ := ParseURI(peer)
		tr := NewMSRPTransport(a, localURI)
		tr.SetRemotePath([]URI{peerURI})
		tr.SetLimits(Limits{MaxLineLength: 256, MaxHeaders: 8, MaxChunkSize: 4096})
		s := NewMSRPSession(tr, SessionConfig{
			KeepaliveInterval: -1,
			OnIncoming:        func(*MSRPSession, *Chunk) {},
			MessageConfig:     MessageConfig{OnMessage: func(*MSRPSession, *IncomingMessage) {}, MaxMessageSize: 1 << 16},
		})
		drained := make(chan struct{})
		go func() { io.Copy(io.Discard, b); close(drained) }() // read whatever the session answers
		b.Write(data)
		b.Close()
		select {
		case <-s.Done():
		case <-time.After(10 * time.Second):
			t.Fatal("the session did not end after its peer hung up")
		}
		<-drained
	})
}
