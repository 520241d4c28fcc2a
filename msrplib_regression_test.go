package msrp

// Regression tests named after msrplib's known bugs (msrplib-behaviour.md
// §11.1, fixed upstream, and §11.2, still present), showing that this port
// does not have them: one test per bug, each named TestMsrplib...; run them
// all with -run Msrplib. Those that exercise a part of the package with its
// own test file live there: bugs 5, 6, 7 and 17 in connect_test.go, 8 to 12
// and 20 in session_test.go, 14 in relay_test.go, 18 in uri_test.go. Not
// applicable to a port: virtual chunks (removed in msrplib 0.16.0) and
// Python 2/3 bytes-versus-str confusion.

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/go-msrp/msrp/internal/leakcheck"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// 0.10.0: chunks over 16 KiB failed; over 64 KiB too, through a real connection.
func TestMsrplib0100ChunksOver16And64KiB(t *testing.T) {
	a, b := pipePair(t)
	for _, size := range []int{16<<10 + 1, 64<<10 + 3, 1 << 20} {
		c := a.MakeSendRequest("", bytes.Repeat([]byte{'z'}, size), 1, 0)
		c.Headers.Set(HeaderContentType, "application/octet-stream")
		go a.WriteChunk(context.Background(), c)
		got, err := b.ReadChunk(context.Background())
		require.NoError(t, err)
		assert.Len(t, got.Data, size)
	}
}

// 0.11.0: Byte-Range of chunks over 2 KiB (interruptible: end "*") and of
// success REPORTs (the bytes the chunk carried).
func TestMsrplib0110ByteRanges(t *testing.T) {
	tr := NewMSRPTransport(nil, URI{Host: "h", SessionID: "s"})
	assert.Equal(t, "1-*/3000", tr.MakeSendRequest("m1234567", make([]byte, 3000), 1, 0).Headers.Get(HeaderByteRange))
	assert.Equal(t, "5-104/200", tr.MakeSendRequest("m1234567", make([]byte, 100), 5, 200).Headers.Get(HeaderByteRange))
	s := &MSRPSession{t: tr}
	c := &Chunk{TransactionID: "tid1234", Method: MethodSEND, Data: make([]byte, 10), Headers: Header{
		{HeaderToPath, "msrp://h/s;tcp"}, {HeaderFromPath, "msrp://p/q;tcp"}, {HeaderByteRange, "21-*/100"}, {HeaderMessageID, "m1234567"},
	}}
	r, err := s.makeReport(c, 200, "")
	require.NoError(t, err)
	assert.Equal(t, "21-30/100", r.Headers.Get(HeaderByteRange))
}

// 0.11.0: a TLS handshake error surfaces, rather than being lost before the
// transport exists.
func TestMsrplib0110TLSErrorsSurface(t *testing.T) {
	leakcheck.Check(t)
	server, _ := tlsConfigs("127.0.0.1")
	acceptor, path := preparedAcceptor(t, ConnectConfig{TLSConfig: server, ConnectTimeout: 300 * time.Millisecond}, true)
	go acceptor.Complete(context.Background(), []URI{{Host: "127.0.0.1", SessionID: "x"}})
	c := &ConnectorDirect{}
	_, err := c.Prepare(context.Background(), URI{Host: "127.0.0.1", UseTLS: true})
	require.NoError(t, err)
	_, err = c.Complete(context.Background(), path)
	var unknown x509.UnknownAuthorityError
	assert.ErrorAs(t, err, &unknown)
}

// 0.11.1: an SRV lookup without records fell back to the service name as a
// port; here it falls back to the domain on 2855.
func TestMsrplib0111SRVFallbackPort(t *testing.T) {
	addrs := relayAddrs(context.Background(), &MSRPRelaySettings{Domain: "example.invalid"},
		&DNSResolver{Server: "127.0.0.1:1", Timeout: 100 * time.Millisecond}, nil)
	assert.Equal(t, []string{"example.invalid:2855"}, addrs)
}

// 2011-05 (shipped in 0.14.0): the keepalive was kept after shutdown. Here no
// goroutine of a session outlives it.
func TestMsrplib0140KeepaliveGoneAfterShutdown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, peer := pipeSessionAndPeer(t, SessionConfig{})
		keepalives := answerEvery(peer, 200)
		time.Sleep(3*DefaultKeepaliveInterval + time.Second)
		require.NoError(t, s.Shutdown(context.Background()))
		<-s.Done()
		time.Sleep(10 * DefaultKeepaliveInterval)
		synctest.Wait()
		assert.EqualValues(t, 3, keepalives.Load(), "none after Shutdown")
	})
	// synctest.Test returns only once every goroutine of the bubble has ended.
}

// 0.14.3: client TLS credentials were not passed. Here a client certificate
// is presented, and a server that requires one gets it.
func TestMsrplib0143ClientCertificatePresented(t *testing.T) {
	leakcheck.Check(t)
	clientCert, err := SelfSignedCertificate("client")
	require.NoError(t, err)
	fp, err := CertificateFingerprint(clientCert.Certificate[0], "sha-256")
	require.NoError(t, err)
	verify, err := VerifyFingerprint(fp)
	require.NoError(t, err)
	server, client := tlsConfigs("127.0.0.1")
	server.ClientAuth, server.VerifyConnection = tls.RequireAnyClientCert, verify
	client.Certificates = []tls.Certificate{clientCert}
	ct, at := connectPair(t, "127.0.0.1", true, ConnectConfig{TLSConfig: client}, ConnectConfig{TLSConfig: server})
	exchange(t, ct, at)
}

// 0.20.0: a header value holding ": " was cut; "Byte-Range: 1-0/0" was
// printed with "*".
func TestMsrplib0200HeaderSplitAndZeroRange(t *testing.T) {
	c := parseOne(t, crlf("MSRP abcd SEND\nTo-Path: msrp://a/b;tcp\nFrom-Path: msrp://c/d;tcp\nX-Note: a: b: c\n-------abcd$\n"))
	assert.Equal(t, "a: b: c", c.Headers.Get("X-Note"))
	assert.Equal(t, "1-0/0", ByteRange{Start: 1, End: 0, Total: 0}.String())
}

// §11.2 #1: a body without Content-Type was glued to the headers. Here a
// body without one is refused (RFC 4975 §9 requires it), and a body with
// one follows a blank line.
func TestMsrplibBug1BlankLineBeforeBody(t *testing.T) {
	c := &Chunk{TransactionID: "abcd1234", Method: MethodSEND, Data: []byte("hello"),
		Headers: Header{{HeaderToPath, "msrp://b/s;tcp"}, {HeaderFromPath, "msrp://a/s;tcp"}, {HeaderByteRange, "1-5/5"}}}
	_, err := c.Encode(nil)
	assert.ErrorIs(t, err, ErrInvalidChunk)
	c.Headers.Add(HeaderContentType, "text/plain")
	raw, err := c.Encode(nil)
	require.NoError(t, err)
	assert.Contains(t, string(raw), "Content-Type: text/plain\r\n\r\nhello\r\n-------abcd1234$")
}

// §11.2 #2: a read ending between the flag and its CRLF gave an empty flag.
func TestMsrplibBug2FlagSplitFromCRLF(t *testing.T) {
	raw := crlf("MSRP abcd SEND\nTo-Path: msrp://a/b;tcp\nFrom-Path: msrp://c/d;tcp\nContent-Type: text/plain\n\nbody\n-------abcd+\n")
	for _, cut := range []int{len(raw) - 1, len(raw) - 2, len(raw) - 3} {
		c := parseOne(t, raw[:cut], raw[cut:])
		assert.Equal(t, FlagContinued, c.ContFlag, "cut at %d", cut)
	}
}

// §11.2 #3: the 4 MiB cap applied to each network piece, not to the total.
func TestMsrplibBug3CapOnTheTotal(t *testing.T) {
	p := Parser{Limits: Limits{MaxChunkSize: 10000}}
	head := crlf("MSRP abcd SEND\nTo-Path: msrp://a/b;tcp\nContent-Type: text/plain\n\n")
	_, _, err := p.Feed(head)
	require.NoError(t, err)
	var got error
	for range 20 { // pieces of 1000 bytes, each far under the cap
		if _, _, err := p.Feed(bytes.Repeat([]byte("x"), 1000)); err != nil {
			got = err
			break
		}
	}
	assert.ErrorIs(t, got, ErrChunkTooLarge)
}

// §11.2 #4: the traffic log crashed on bodies when traffic logging was on.
func TestMsrplibBug4TrafficLogWithBodies(t *testing.T) {
	a, b := pipePair(t)
	h := &recordHandler{}
	a.Logger = &Logger{Slog: slog.New(h), LogTraffic: true}
	c := a.MakeSendRequest("", []byte{0, 1, 2, 0xff, 'x'}, 1, 0)
	c.Headers.Set(HeaderContentType, "application/octet-stream")
	require.NoError(t, a.WriteChunk(context.Background(), c))
	_, err := b.ReadChunk(context.Background())
	require.NoError(t, err)
	assert.NotEmpty(t, h.records)
}

// §11.2 #13: Shutdown did not wait for outstanding responses. Here it does.
func TestMsrplibBug13ShutdownWaitsForResponses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, peer := pipeSessionAndPeer(t, SessionConfig{KeepaliveInterval: -1})
		answered := make(chan error, 1)
		require.NoError(t, s.SendChunk(textSend(s.Transport(), "x"), func(_ *Chunk, err error) { answered <- err }))
		go func() {
			c, err := peer.ReadChunk(context.Background())
			if err != nil {
				return
			}
			time.Sleep(5 * time.Second) // the peer answers late
			peer.WriteResponse(context.Background(), c, 200, "")
			drain(peer)
		}()
		start := time.Now()
		require.NoError(t, s.Shutdown(context.Background()))
		assert.NoError(t, <-answered, "the response was awaited")
		assert.GreaterOrEqual(t, time.Since(start), 5*time.Second)
	})
}

// §11.2 #15: a URI without session id got a random one.
func TestMsrplibBug15NoInventedSessionID(t *testing.T) {
	u, err := ParseURI("msrps://relay.example.com:2855;tcp")
	require.NoError(t, err)
	assert.Empty(t, u.SessionID)
	assert.Equal(t, "msrps://relay.example.com:2855;tcp", u.String())
}

// §11.2 #16: garbage was skipped silently, header lines without ": " were
// ignored, header names were case-sensitive.
func TestMsrplibBug16GarbageAndHeaderNames(t *testing.T) {
	var p Parser
	_, _, err := p.Feed([]byte("this is not MSRP\r\n"))
	assert.ErrorIs(t, err, ErrBadStartLine, "reported, for the log")
	_, errs := parseAll(t, &Parser{}, [][]byte{crlf("MSRP abcd SEND\nTo-Path: msrp://a/b;tcp\nno colon\n-------abcd$\n")})
	require.Len(t, errs, 1)
	assert.ErrorIs(t, errs[0], ErrMalformedHeader, "answerable with 400")
	c := parseOne(t, crlf("MSRP abcd SEND\nto-path: msrp://a/b;tcp\nFROM-PATH: msrp://c/d;tcp\n-------abcd$\n"))
	to, err := c.ToPath()
	require.NoError(t, err)
	assert.Equal(t, "a", to[0].Host)
	_, err = c.FromPath()
	assert.NoError(t, err)
}

// §11.2 #19: MSRPServer.prepare with port 0 failed. Here port 0 picks a
// port and later sessions share it.
func TestMsrplibBug19ServerPortZero(t *testing.T) {
	srv := &MSRPServer{}
	defer srv.Close()
	a, err := srv.Acceptor(ServerAcceptorConfig{}).Prepare(context.Background(), URI{Host: "127.0.0.1", Port: 0})
	require.NoError(t, err)
	b, err := srv.Acceptor(ServerAcceptorConfig{}).Prepare(context.Background(), URI{Host: "127.0.0.1", Port: 0})
	require.NoError(t, err)
	assert.NotZero(t, a[0].Port)
	assert.Equal(t, a[0].Port, b[0].Port)
	require.NoError(t, srv.Close())
	conn, err := net.DialTimeout("tcp", a[0].HostPort(), 200*time.Millisecond)
	if err == nil {
		conn.Close()
	}
	assert.Error(t, err, "stopped listening on Close")
}

// Credentials never reach a log line, at any level, traffic logging on.
func TestNoCredentialsInLogs(t *testing.T) {
	f := &fakeRelay{script: func(req *Chunk, n int) *Chunk {
		if n == 1 {
			return reply(req, 401, HeaderWWWAuthenticate, challenge("n1"))
		}
		return reply(req, 200, HeaderUsePath, usePath)
	}}
	port := listenFake(t, f)
	h := &recordHandler{level: slog.LevelDebug - 10}
	logger := &Logger{Slog: slog.New(h), LogTraffic: true, Level: slog.LevelDebug}
	relay := relayFor(port)
	relay.Password = "hunter2-secret"
	c := &ConnectorRelay{Relay: relay, ConnectConfig: ConnectConfig{Logger: logger}}
	defer c.Cleanup()
	_, err := c.Prepare(context.Background(), URI{Host: "127.0.0.1"})
	require.NoError(t, err)
	out := h.dump()
	require.Contains(t, out, "AUTH", "the exchange was logged")
	assert.NotContains(t, out, "hunter2-secret")
	seen := f.seen()
	p, err := seen[1].Authorization()
	require.NoError(t, err)
	response, _ := p.Get("response")
	assert.NotContains(t, out, response, "not even the digest response")
	assert.True(t, strings.Contains(out, "[redacted]"))
	assert.False(t, errors.Is(err, ErrTimeout))
}
