package msrp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// An independent reading of RFC 4975 §9, to hold the encoder to: it shares
// no code with chunk.go or the parser.
var (
	abnfIdent      = `[A-Za-z0-9][A-Za-z0-9.\-+%=]{3,31}`
	abnfToken      = `[!#-'*+\-.0-9A-Z^-~]+`           // RFC 4975 token: %x21 / %x23-27 / %x2A-2B / %x2D-2E / %x30-39 / %x41-5A / %x5E-7E
	abnfUTF8Text   = `[\t\x20-\x7e\x{80}-\x{10FFFF}]*` // and valid UTF-8: checkABNF checks that first
	abnfURI        = `msrps?://([^@/;\s]+@)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~%!$&'()*+,=]+)(:[1-9][0-9]{0,4})?(/[A-Za-z0-9\-._~+=/]+)?;` + abnfToken + `(;` + abnfToken + `(=` + abnfToken + `)?)*`
	abnfPath       = `^` + abnfURI + `( ` + abnfURI + `)*$`
	reReqStart     = regexp.MustCompile(`^MSRP (` + abnfIdent + `) ([A-Z_]+)$`) // method = 1*UPALPHA, and "_" for sipsimple's FILE_OFFSET
	reRespStart    = regexp.MustCompile(`^MSRP (` + abnfIdent + `) ([0-9]{3})( ` + abnfUTF8Text + `)?$`)
	reHeader       = regexp.MustCompile(`^([A-Za-z]` + abnfToken[:len(abnfToken)-1] + `*): (` + abnfUTF8Text + `)$`)
	reDefinedValue = map[string]*regexp.Regexp{
		"to-path":        regexp.MustCompile(abnfPath),
		"from-path":      regexp.MustCompile(abnfPath),
		"use-path":       regexp.MustCompile(abnfPath),
		"message-id":     regexp.MustCompile(`^` + abnfIdent + `$`),
		"byte-range":     regexp.MustCompile(`^[0-9]+-([0-9]+|\*)/([0-9]+|\*)$`),
		"status":         regexp.MustCompile(`^[0-9]{3} [0-9]{3}( ` + abnfUTF8Text + `)?$`),
		"success-report": regexp.MustCompile(`(?i)^(yes|no)$`),
		"failure-report": regexp.MustCompile(`(?i)^(yes|no|partial)$`),
		// type "/" subtype *( ";" gen-param ), with the space after ";"
		// that RFC 2045 headers allow and everyone writes.
		"content-type": regexp.MustCompile(`^` + abnfToken + `/` + abnfToken + `(; ?` + abnfToken + `(=(` + abnfToken + `|"([^"\\]|\\.)*"))?)*$`),
		"expires":      regexp.MustCompile(`^[0-9]+$`),
		"min-expires":  regexp.MustCompile(`^[0-9]+$`),
		"max-expires":  regexp.MustCompile(`^[0-9]+$`),
	}
)

// checkABNF says how one encoded chunk breaks the grammar of RFC 4975 §9:
// msrp-request = req-start headers [content-stuff] end-line, msrp-response
// = resp-start headers end-line, headers = To-Path CRLF From-Path CRLF
// *(header CRLF), content-stuff = *(Other-Mime-header CRLF) Content-Type
// 2CRLF data CRLF.
func checkABNF(raw []byte) error {
	lineEnd := bytes.Index(raw, []byte("\r\n"))
	if lineEnd < 0 {
		return errors.New("no start line")
	}
	start := string(raw[:lineEnd])
	if !utf8.ValidString(start) {
		return fmt.Errorf("start line not UTF-8: %q", start) // UTF8-NONASCII is whole sequences
	}
	rest := raw[lineEnd+2:]
	var tid string
	request := false
	if m := reReqStart.FindStringSubmatch(start); m != nil {
		tid, request = m[1], true
	} else if m := reRespStart.FindStringSubmatch(start); m != nil {
		tid = m[1]
	} else {
		return fmt.Errorf("bad start line %q", start)
	}
	endLine := "-------" + tid
	var names []string
	body := false
	for {
		i := bytes.Index(rest, []byte("\r\n"))
		if i < 0 {
			return errors.New("header section not terminated")
		}
		line := string(rest[:i])
		rest = rest[i+2:]
		if line == "" {
			body = true
			break
		}
		if strings.HasPrefix(line, endLine) {
			rest = append([]byte(line+"\r\n"), rest...)
			break
		}
		m := reHeader.FindStringSubmatch(line)
		if m == nil || !utf8.ValidString(line) {
			return fmt.Errorf("bad header line %q", line)
		}
		name := strings.ToLower(m[1])
		if re, ok := reDefinedValue[name]; ok && !re.MatchString(m[2]) {
			return fmt.Errorf("%s value %q breaks its grammar", m[1], m[2])
		}
		names = append(names, name)
	}
	if len(names) < 2 || names[0] != "to-path" || names[1] != "from-path" {
		return fmt.Errorf("headers %v do not start with To-Path, From-Path", names)
	}
	for i, n := range names {
		if i > 1 && (n == "to-path" || n == "from-path") {
			return fmt.Errorf("%s repeated", n)
		}
	}
	hasType := false
	for _, n := range names {
		hasType = hasType || n == "content-type"
	}
	if body != hasType {
		return fmt.Errorf("body section %v, Content-Type %v", body, hasType)
	}
	if body {
		if !request {
			return errors.New("a response with a body")
		}
		// content-stuff: once a Content-* header starts it, only Content-*
		// headers follow, and Content-Type is the last.
		if names[len(names)-1] != "content-type" {
			return fmt.Errorf("Content-Type is not last: %v", names)
		}
		mime := false
		for _, n := range names[2:] {
			isMIME := strings.HasPrefix(n, "content-")
			if mime && !isMIME {
				return fmt.Errorf("%s after the MIME headers: %v", n, names)
			}
			mime = mime || isMIME
		}
		// data CRLF end-line: the data runs to the last CRLF before the end-line.
		i := bytes.LastIndex(rest, []byte("\r\n"+endLine))
		if i < 0 {
			return errors.New("no CRLF before the end-line")
		}
		rest = rest[i+2:]
	}
	if len(rest) != len(endLine)+3 || string(rest[:len(endLine)]) != endLine || strings.IndexByte("+$#", rest[len(endLine)]) < 0 ||
		string(rest[len(endLine)+1:]) != "\r\n" {
		return fmt.Errorf("bad end-line %q", rest)
	}
	return nil
}

func TestCheckABNFCatchesWhatItShould(t *testing.T) {
	good := "MSRP a786hjs2 SEND\r\nTo-Path: msrp://biloxi.example.com:12763/kjhd37s2s20w2a;tcp\r\n" +
		"From-Path: msrp://atlanta.example.com:7654/jshA7weztas;tcp\r\nMessage-ID: 87652491\r\n" +
		"Byte-Range: 1-25/25\r\nContent-Disposition: inline\r\nContent-Type: text/plain\r\n\r\n" +
		"Hey Bob, are you there?\r\n-------a786hjs2$\r\n"
	require.NoError(t, checkABNF([]byte(good)))
	for name, raw := range map[string]string{
		"Content-Type not last":        strings.Replace(good, "Content-Disposition: inline\r\nContent-Type: text/plain", "Content-Type: text/plain\r\nContent-Disposition: inline", 1),
		"a header after a MIME header": strings.Replace(good, "Byte-Range: 1-25/25\r\nContent-Disposition: inline", "Content-Disposition: inline\r\nByte-Range: 1-25/25", 1),
		"From-Path first":              strings.Replace(strings.Replace(good, "To-Path", "X-Tmp", 1), "From-Path", "To-Path", 1),
		"bad Byte-Range":               strings.Replace(good, "1-25/25", "x", 1),
		"body, no Content-Type":        strings.Replace(good, "Content-Type: text/plain\r\n", "", 1),
		"response with a body":         strings.Replace(good, "SEND", "200 OK", 1),
		"wrong end-line tid":           strings.Replace(good, "-------a786hjs2$", "-------a786hjs3$", 1),
	} {
		assert.Error(t, checkABNF([]byte(raw)), name)
	}
}

// Every chunk the encoder accepts re-parses to itself and follows the
// grammar, whatever headers, in whatever order, it was built with; and the
// encoder accepts the well-formed ones.
func TestEncodeOnlyValidMSRP(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	pick := func(choices ...string) string { return choices[rng.IntN(len(choices))] }
	values := map[string][]string{
		HeaderToPath:    {"msrp://b.example.com:2855/s1234;tcp", "msrps://[::1]:9/x;tcp msrp://h/s;tcp", "not a uri", ""},
		HeaderFromPath:  {"msrp://a.example.com/s5678;tcp", "msrp://a/s;tcp;p=1", "msrp://a/s"},
		HeaderMessageID: {"m1234567", "abc", "a b c d"}, HeaderByteRange: {"1-5/5", "1-*/*", "3-2/5", "x"},
		HeaderStatus: {"000 200 OK", "000 413", "200"}, HeaderSuccessReport: {"yes", "NO", "maybe"},
		HeaderFailureReport: {"partial", "no", "sometimes"}, HeaderContentType: {"text/plain", "text/plain; charset=utf-8", "text", "a/b; c"},
		"Content-Disposition": {"inline", "attachment; filename=\"x\""}, "Content-ID": {"<x@y>"},
		"Content-Description": {"a photo"}, "X-Extra": {"anything", "a\r\nb"}, "Expires": {"600", "-1"},
	}
	names := slices.Sorted(maps.Keys(values))
	accepted := 0
	for range 20000 {
		c := &Chunk{TransactionID: NewTransactionID(), ContFlag: pick("$", "+", "#")[0]}
		if rng.IntN(4) == 0 {
			c.Code = 200
		} else {
			c.Method = pick(MethodSEND, MethodREPORT, MethodNICKNAME)
		}
		for _, n := range []string{HeaderToPath, HeaderFromPath} {
			if rng.IntN(10) > 0 { // usually valid, and present
				c.Headers.Add(n, values[n][0])
			}
		}
		for range rng.IntN(6) {
			n := names[rng.IntN(len(names))]
			v := values[n][0]
			if rng.IntN(5) == 0 {
				v = pick(values[n]...)
			}
			c.Headers = append(c.Headers, HeaderField{n, v})
		}
		rng.Shuffle(len(c.Headers), func(i, j int) { c.Headers[i], c.Headers[j] = c.Headers[j], c.Headers[i] })
		if rng.IntN(2) == 0 {
			c.Data = []byte(pick("hello", "a\r\nb", "x"))
		}
		raw, err := c.Encode(nil)
		if err != nil {
			require.True(t, errors.Is(err, ErrInvalidChunk) || errors.Is(err, ErrBodyContainsEndLine), "%v", err)
			continue
		}
		accepted++
		require.NoError(t, checkABNF(raw), "%q", raw)
		back := parseOne(t, raw)
		want := canonical(c)
		require.Equal(t, want.String(), back.String())
		require.Equal(t, want.Headers, back.Headers, "%q", raw)
		require.Equal(t, string(want.Data), string(back.Data))
	}
	t.Logf("%d of 20000 random chunks accepted, each valid", accepted)
	assert.Greater(t, accepted, 2000, "the generator makes enough valid chunks to prove something")
}

// recordingConn keeps a copy of everything written through it.
type recordingConn struct {
	net.Conn
	mu  sync.Mutex
	out bytes.Buffer
}

func (c *recordingConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	c.out.Write(b)
	c.mu.Unlock()
	return c.Conn.Write(b)
}

// splitChunks cuts a byte stream into the raw bytes of each chunk.
func splitChunks(t *testing.T, stream []byte) [][]byte {
	var p Parser
	var chunks [][]byte
	start := 0
	for pos := 0; pos < len(stream); {
		c, n, err := p.Feed(stream[pos:])
		require.NoError(t, err)
		pos += n
		if c != nil {
			chunks = append(chunks, stream[start:pos])
			start = pos
		}
	}
	return chunks
}

// What a session writes follows the grammar: here the chunks of a message
// with Success-Report and headers of the application's own, which once put
// Content-Type before Success-Report, and the responses and REPORTs the
// session sends.
func TestSessionWritesValidMSRP(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var rec *recordingConn
		s, peer := pipeSessionWith(t, SessionConfig{KeepaliveInterval: -1, MessageConfig: MessageConfig{ChunkSize: 4}},
			func(c net.Conn) net.Conn { rec = &recordingConn{Conn: c}; return rec })
		go func() {
			for {
				c, err := peer.ReadChunk(context.Background())
				if err != nil {
					return
				}
				peer.WriteResponse(context.Background(), c, 200, "")
			}
		}()
		m, err := s.SendMessage(strings.NewReader("hello world"), 11, "text/plain", MessageOptions{
			SuccessReport: true, FailureReport: FailureReportYes,
			Headers: Header{{"Content-Disposition", "inline"}, {"X-Note", "app header"}},
		})
		require.NoError(t, err)
		require.NoError(t, m.Wait(context.Background()))
		in := textSend(peer, "answer me, and report")
		in.Headers.Set(HeaderSuccessReport, "yes")
		require.NoError(t, peer.WriteChunk(context.Background(), in))
		synctest.Wait()
		rec.mu.Lock()
		stream := bytes.Clone(rec.out.Bytes())
		rec.mu.Unlock()
		chunks := splitChunks(t, stream)
		require.Len(t, chunks, 5, "3 message chunks, a 200 and a REPORT")
		for _, raw := range chunks {
			assert.NoError(t, checkABNF(raw), "%q", raw)
		}
		assert.Contains(t, string(chunks[0]), "Success-Report: yes\r\nX-Note: app header\r\nContent-Disposition: inline\r\nContent-Type: text/plain\r\n\r\nhell")
	})
}
