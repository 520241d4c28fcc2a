package msrp

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"bytes"
	"log/slog"

	"github.com/go-msrp/msrp/internal/digest"
	"github.com/go-msrp/msrp/internal/leakcheck"
	"github.com/go-msrp/msrp/internal/pipenet"
	"github.com/go-msrp/msrp/internal/testcert"
	"github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeRelay answers AUTH requests with a script, for what a real relay
// cannot be made to do. Each request is passed with its number on the
// connection (from 1); the script returns the response, or nil to stay
// silent.
type fakeRelay struct {
	mu       sync.Mutex
	requests []*Chunk
	script   func(req *Chunk, n int) *Chunk
}

func (f *fakeRelay) serve(conn net.Conn) {
	t := NewMSRPTransport(conn, URI{Host: "relay.example.com", Transport: "tcp"})
	defer t.Close()
	for n := 1; ; n++ {
		req, err := t.ReadChunk(context.Background())
		if err != nil {
			return
		}
		f.mu.Lock()
		f.requests = append(f.requests, req)
		f.mu.Unlock()
		if resp := f.script(req, n); resp != nil {
			if err := t.WriteChunk(context.Background(), resp); err != nil {
				return
			}
		}
	}
}

func (f *fakeRelay) seen() []*Chunk {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*Chunk(nil), f.requests...)
}

// serveOnce serves the first connection to ln with f.
func serveOnce(ln net.Listener, f *fakeRelay) {
	go func() {
		if conn, err := ln.Accept(); err == nil {
			f.serve(conn)
		}
	}()
}

// sessionThrough runs a session to peer through the fake relay f on ln.
func sessionThrough(t *testing.T, ln *pipenet.Listener, f *fakeRelay, peer URI) (*MSRPTransport, *MSRPSession) {
	serveOnce(ln, f)
	c := &ConnectorRelay{Relay: relayFor(2855), ConnectConfig: ConnectConfig{Dial: ln.Dial}}
	_, err := c.Prepare(context.Background(), URI{Host: "127.0.0.1"})
	require.NoError(t, err)
	tr, err := c.Complete(context.Background(), []URI{peer})
	require.NoError(t, err)
	return tr, NewMSRPSession(tr, SessionConfig{KeepaliveInterval: -1})
}

// listenFake runs a fake relay on loopback TCP and returns its port.
func listenFake(t *testing.T, f *fakeRelay) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { f.serve(conn) })
		}
	})
	return ln.Addr().(*net.TCPAddr).Port
}

const fakeRealm = "relay.example.com"

func reply(req *Chunk, code int, headers ...string) *Chunk {
	resp, _ := NewResponse(req, code, "")
	for i := 0; i+1 < len(headers); i += 2 {
		resp.Headers.Add(headers[i], headers[i+1])
	}
	return resp
}

func challenge(nonce string, extra ...string) string {
	return `Digest realm="` + fakeRealm + `", nonce="` + nonce + `", qop="auth"` + strings.Join(extra, "")
}

// validDigest checks a request's Authorization like a relay would.
func validDigest(req *Chunk, password string) bool {
	p, err := req.Authorization()
	if err != nil {
		return false
	}
	get := func(k string) string { v, _ := p.Get(k); return v }
	ha1 := digest.HA1(get("algorithm"), get("username"), get("realm"), password, get("nonce"), get("cnonce"))
	want := digest.ResponseValue(ha1, get("nonce"), get("nc"), get("cnonce"), get("qop"), MethodAUTH, get("uri"))
	return get("response") == want && get("uri") == req.Headers.Get(HeaderToPath)
}

func relayFor(port int) MSRPRelaySettings {
	return MSRPRelaySettings{Domain: fakeRealm, Host: "127.0.0.1", Port: port, DisableTLS: true, Username: "alice", Password: "secret"}
}

const usePath = "msrp://127.0.0.1:2855/rsess1;tcp"

func TestMsrplibBug14RelayAuth(t *testing.T) {
	leakcheck.Check(t)
	tests := []struct {
		name    string
		script  func(req *Chunk, n int) *Chunk
		wantErr string
		code    int
		check   func(t *testing.T, reqs []*Chunk)
	}{
		{
			name: "401 then 200",
			script: func(req *Chunk, n int) *Chunk {
				if n == 1 {
					return reply(req, 401, HeaderWWWAuthenticate, challenge("n1", `, opaque="op1"`))
				}
				if !validDigest(req, "secret") {
					return reply(req, 403)
				}
				return reply(req, 200, HeaderUsePath, usePath, HeaderExpires, "600")
			},
			check: func(t *testing.T, reqs []*Chunk) {
				require.Len(t, reqs, 2)
				assert.Equal(t, "msrp://"+fakeRealm+":"+reqs[0].Headers.Get(HeaderToPath)[len("msrp://"+fakeRealm+":"):], reqs[0].Headers.Get(HeaderToPath))
				_, has := reqs[0].Headers.Lookup(HeaderAuthorization)
				assert.False(t, has, "first AUTH without credentials")
				auth := reqs[1].Headers.Get(HeaderAuthorization)
				assert.Contains(t, auth, "qop=auth, nc=00000001")
				assert.Contains(t, auth, `opaque="op1"`)
				assert.NotEqual(t, reqs[0].TransactionID, reqs[1].TransactionID)
			},
		},
		{
			name: "wrong password: the relay's second 401",
			script: func(req *Chunk, n int) *Chunk {
				return reply(req, 401, HeaderWWWAuthenticate, challenge(fmt.Sprint("n", n)))
			},
			code: 401,
		},
		{
			name: "stale nonce: one more round",
			script: func(req *Chunk, n int) *Chunk {
				switch n {
				case 1:
					return reply(req, 401, HeaderWWWAuthenticate, challenge("old"))
				case 2:
					return reply(req, 401, HeaderWWWAuthenticate, challenge("fresh", ", stale=true"))
				}
				return reply(req, 200, HeaderUsePath, usePath)
			},
			check: func(t *testing.T, reqs []*Chunk) {
				require.Len(t, reqs, 3)
				assert.Contains(t, reqs[2].Headers.Get(HeaderAuthorization), `nonce="fresh"`)
			},
		},
		{
			name: "403",
			script: func(req *Chunk, n int) *Chunk {
				return reply(req, 403)
			},
			code: 403,
		},
		{
			name: "423 with Min-Expires, then success",
			script: func(req *Chunk, n int) *Chunk {
				switch n {
				case 1:
					return reply(req, 401, HeaderWWWAuthenticate, challenge("n1"))
				case 2:
					return reply(req, 423, HeaderMinExpires, "900")
				}
				return reply(req, 200, HeaderUsePath, usePath, HeaderExpires, req.Headers.Get(HeaderExpires))
			},
			check: func(t *testing.T, reqs []*Chunk) {
				require.Len(t, reqs, 3)
				assert.Equal(t, "60", reqs[1].Headers.Get(HeaderExpires))
				assert.Equal(t, "900", reqs[2].Headers.Get(HeaderExpires))
				assert.Contains(t, reqs[2].Headers.Get(HeaderAuthorization), "nc=00000002", "a reused nonce counts up")
			},
		},
		{
			name:    "401 without WWW-Authenticate",
			script:  func(req *Chunk, n int) *Chunk { return reply(req, 401) },
			wantErr: "WWW-Authenticate header missing",
		},
		{
			name: "200 without Use-Path",
			script: func(req *Chunk, n int) *Chunk {
				return reply(req, 200, HeaderExpires, "600")
			},
			wantErr: "Use-Path header missing",
		},
		{
			name: "Authentication-Info with the right rspauth",
			script: func(req *Chunk, n int) *Chunk {
				if n == 1 {
					return reply(req, 401, HeaderWWWAuthenticate, challenge("n1"))
				}
				return reply(req, 200, HeaderUsePath, usePath, HeaderAuthenticationInfo, rspauthFor(req, "secret"))
			},
		},
		{
			name: "Authentication-Info from a relay that does not know the password",
			script: func(req *Chunk, n int) *Chunk {
				if n == 1 {
					return reply(req, 401, HeaderWWWAuthenticate, challenge("n1"))
				}
				return reply(req, 200, HeaderUsePath, usePath, HeaderAuthenticationInfo, rspauthFor(req, "other"))
			},
			wantErr: "rspauth does not match",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeRelay{script: tc.script}
			port := listenFake(t, f)
			relay := relayFor(port)
			if tc.name == "423 with Min-Expires, then success" {
				relay.Expires = 60
			}
			c := &ConnectorRelay{Relay: relay}
			defer c.Cleanup()
			path, err := c.Prepare(context.Background(), URI{Host: "127.0.0.1"})
			switch {
			case tc.code != 0:
				var te *TransactionError
				require.ErrorAs(t, err, &te)
				assert.Equal(t, tc.code, te.Code)
			case tc.wantErr != "":
				assert.ErrorContains(t, err, tc.wantErr)
			default:
				require.NoError(t, err)
				require.Len(t, path, 2)
				assert.Equal(t, usePath, path[0].String())
			}
			if tc.check != nil {
				tc.check(t, f.seen())
			}
		})
	}
}

// rspauthFor computes the Authentication-Info a relay knowing password sends.
func rspauthFor(req *Chunk, password string) string {
	p, _ := req.Authorization()
	get := func(k string) string { v, _ := p.Get(k); return v }
	ha1 := digest.HA1(get("algorithm"), get("username"), get("realm"), password, get("nonce"), get("cnonce"))
	rsp := digest.ResponseValue(ha1, get("nonce"), get("nc"), get("cnonce"), get("qop"), "", get("uri"))
	return `rspauth="` + rsp + `", qop=auth, nc=` + get("nc") + `, cnonce="` + get("cnonce") + `"`
}

// The relay never answers AUTH: 408 after msrplib's 30 s, as ErrAuthTimeout.
func TestRelayAuthTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ln := pipenet.Listen(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 2855})
		defer ln.Close()
		f := &fakeRelay{script: func(*Chunk, int) *Chunk { return nil }}
		serveOnce(ln, f)
		c := &ConnectorRelay{Relay: relayFor(2855), ConnectConfig: ConnectConfig{Dial: ln.Dial, ConnectTimeout: time.Hour}}
		start := time.Now()
		_, err := c.Prepare(context.Background(), URI{Host: "127.0.0.1"})
		assert.ErrorIs(t, err, ErrAuthTimeout)
		assert.ErrorIs(t, err, ErrTimeout)
		var te *TransactionError
		require.ErrorAs(t, err, &te)
		assert.Equal(t, 408, te.Code)
		assert.Equal(t, DefaultTimeout, time.Since(start))
		c.Cleanup()
	})
}

// A session on a relay connection renews the reservation before Expires
// runs out, for as long as it runs.
func TestRelayReauthBeforeExpires(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ln := pipenet.Listen(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 2855})
		defer ln.Close()
		var times []time.Duration
		start := time.Now()
		f := &fakeRelay{script: func(req *Chunk, n int) *Chunk {
			switch req.Method {
			case MethodAUTH:
				if req.Headers.Get(HeaderAuthorization) == "" {
					return reply(req, 401, HeaderWWWAuthenticate, challenge(fmt.Sprint("n", n)))
				}
				times = append(times, time.Since(start))
				return reply(req, 200, HeaderUsePath, usePath, HeaderExpires, "300")
			case MethodSEND: // the binding SEND: the relay answers hop by hop
				return reply(req, 200)
			}
			return nil
		}}
		_, s := sessionThrough(t, ln, f, URI{Host: "10.0.0.2", Port: 2855, SessionID: "peer", Transport: "tcp"})
		time.Sleep(1000 * time.Second)
		s.Close()
		// 300 s reservations renewed at four fifths: 0, 240, 480, 720, 960 s.
		assert.Equal(t, []time.Duration{0, 240 * time.Second, 480 * time.Second, 720 * time.Second, 960 * time.Second}, times)
	})
}

// dnsServer serves SRV records on loopback with miekg/dns.
func dnsServer(t *testing.T, records map[string][]dns.RR) string {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		if rrs, ok := records[r.Question[0].Name]; ok {
			m.Answer = rrs
		} else {
			m.Rcode = dns.RcodeNameError
		}
		w.WriteMsg(m)
	})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go srv.ActivateAndServe()
	<-started
	t.Cleanup(func() { srv.Shutdown() })
	return pc.LocalAddr().String()
}

func srvRR(name, target string, port, priority, weight uint16) dns.RR {
	return &dns.SRV{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeSRV, Class: dns.ClassINET, Ttl: 60},
		Target: target, Port: port, Priority: priority, Weight: weight}
}

// The relay is found by SRV, in priority order, and the next target is
// tried when one does not answer; without records the domain itself is used.
func TestRelaySRV(t *testing.T) {
	leakcheck.Check(t)
	f := &fakeRelay{script: func(req *Chunk, n int) *Chunk {
		if n == 1 {
			return reply(req, 401, HeaderWWWAuthenticate, challenge("n1"))
		}
		return reply(req, 200, HeaderUsePath, usePath)
	}}
	port := listenFake(t, f)
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	deadPort := dead.Addr().(*net.TCPAddr).Port
	dead.Close() // nothing listens there any more

	server := dnsServer(t, map[string][]dns.RR{
		"_msrp._tcp.relay.example.com.": {
			srvRR("_msrp._tcp.relay.example.com.", "localhost.", uint16(port), 20, 0),
			srvRR("_msrp._tcp.relay.example.com.", "127.0.0.1.", uint16(deadPort), 10, 0),
		},
	})
	resolver := &DNSResolver{Server: server}
	_, addrs, err := resolver.LookupSRV(context.Background(), "msrp", "tcp", "relay.example.com")
	require.NoError(t, err)
	require.Len(t, addrs, 2)
	assert.Equal(t, uint16(deadPort), addrs[0].Port, "priority 10 first")

	relay := MSRPRelaySettings{Domain: "relay.example.com", DisableTLS: true, Username: "alice", Password: "secret"}
	c := &ConnectorRelay{Relay: relay, Resolver: resolver}
	defer c.Cleanup()
	path, err := c.Prepare(context.Background(), URI{Host: "127.0.0.1"})
	require.NoError(t, err, "the dead first target is skipped")
	assert.Equal(t, usePath, path[0].String())

	t.Run("no records: the domain on 2855", func(t *testing.T) {
		got := relayAddrs(context.Background(), &MSRPRelaySettings{Domain: "nowhere.example.com"}, resolver, nil)
		assert.Equal(t, []string{"nowhere.example.com:2855"}, got)
		got = relayAddrs(context.Background(), &MSRPRelaySettings{Domain: "nowhere.example.com", Port: 2856}, resolver, nil)
		assert.Equal(t, []string{"nowhere.example.com:2856"}, got)
		got = relayAddrs(context.Background(), &MSRPRelaySettings{Domain: "x", Host: "10.1.1.1"}, resolver, nil)
		assert.Equal(t, []string{"10.1.1.1:2855"}, got, "a host skips DNS")
	})
	_, _, err = resolver.LookupSRV(context.Background(), "msrps", "tcp", "relay.example.com")
	assert.Error(t, err)
}

// Within a priority, targets come in an order weighted by their weights.
func TestOrderSRVWeights(t *testing.T) {
	firsts := map[string]int{}
	for range 3000 {
		addrs := orderSRV([]*net.SRV{
			{Target: "heavy", Priority: 1, Weight: 90},
			{Target: "light", Priority: 1, Weight: 10},
			{Target: "backup", Priority: 2, Weight: 100},
		})
		require.Len(t, addrs, 3)
		assert.Equal(t, "backup", addrs[2].Target)
		firsts[addrs[0].Target]++
	}
	assert.InDelta(t, 2700, firsts["heavy"], 200, "%v", firsts)
	assert.InDelta(t, 300, firsts["light"], 200, "%v", firsts)
}

func TestRelayConnectTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := &ConnectorRelay{Relay: relayFor(2855), ConnectConfig: ConnectConfig{
			Dial: func(ctx context.Context, _, _ string) (net.Conn, error) { <-ctx.Done(); return nil, ctx.Err() },
		}}
		start := time.Now()
		_, err := c.Prepare(context.Background(), URI{Host: "127.0.0.1"})
		assert.ErrorIs(t, err, ErrRelayConnectTimeout)
		assert.Equal(t, DefaultTimeout, time.Since(start))
	})
}

// A failure REPORT that a relay on the path generates, with only its own
// URI in From-Path (RFC 4976 §7; AG Projects' msrprelay does this), reaches
// the application. Before, the session's strict path check dropped it, and
// REPORTs are never answered, so nothing was heard of the failure. One from
// a URI that is not on the path is still dropped.
func TestRelayFailureReportReachesTheSession(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ln := pipenet.Listen(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 2855})
		defer ln.Close()
		relayURI, err := ParseURI(usePath)
		require.NoError(t, err)
		stranger := URI{Host: "127.0.0.9", Port: 2855, SessionID: "nobody", Transport: "tcp"}
		go func() { // the relay: AUTH, the binding SEND, then a SEND it cannot deliver
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			rt := NewMSRPTransport(conn, relayURI)
			defer rt.Close()
			for {
				req, err := rt.ReadChunk(context.Background())
				if err != nil {
					return
				}
				switch {
				case req.Method == MethodAUTH:
					rt.WriteChunk(context.Background(), reply(req, 200, HeaderUsePath, usePath))
				case req.Method == MethodSEND && len(req.Data) == 0:
					rt.WriteResponse(context.Background(), req, 200, "")
				case req.Method == MethodSEND:
					rt.WriteResponse(context.Background(), req, 200, "") // hop by hop
					from, _ := req.FromPath()
					for _, reporter := range []URI{stranger, relayURI} {
						rep := NewRequest(MethodREPORT, from, []URI{reporter})
						rep.Headers.Add(HeaderMessageID, req.Headers.Get(HeaderMessageID))
						rep.Headers.Add(HeaderByteRange, "1-5/5")
						rep.Headers.Add(HeaderStatus, "000 481 Peer unreachable")
						rt.WriteChunk(context.Background(), rep)
					}
				}
			}
		}()
		c := &ConnectorRelay{Relay: relayFor(2855), ConnectConfig: ConnectConfig{Dial: ln.Dial}}
		_, err = c.Prepare(context.Background(), URI{Host: "127.0.0.1"})
		require.NoError(t, err)
		tr, err := c.Complete(context.Background(), []URI{{Host: "10.0.0.2", Port: 2855, SessionID: "peer", Transport: "tcp"}})
		require.NoError(t, err)
		reports := make(chan *Chunk, 2)
		s := NewMSRPSession(tr, SessionConfig{KeepaliveInterval: -1, OnIncoming: func(_ *MSRPSession, c *Chunk) {
			if c.Method == MethodREPORT {
				reports <- c
			}
		}})
		defer s.Close()
		_, err = s.DeliverChunk(context.Background(), textSend(tr, "hello"))
		require.NoError(t, err)
		synctest.Wait()
		require.Len(t, reports, 1, "the relay's REPORT, not the stranger's")
		rep := <-reports
		st, err := rep.Status()
		require.NoError(t, err)
		assert.Equal(t, 481, st.Code)
		assert.Equal(t, usePath, rep.Headers.Get(HeaderFromPath))
	})
}

// AcceptorRelay.Complete answers a request with the wrong paths with 481
// and goes on waiting for the right peer, as AcceptorDirect does. Before, it
// gave up at once, which ended the reservation the right peer needed.
func TestRelayAcceptorRefusesAStrangerAndWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ln := pipenet.Listen(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 2855})
		defer ln.Close()
		relayURI, err := ParseURI(usePath)
		require.NoError(t, err)
		peerURI := URI{Host: "10.0.0.2", Port: 2855, SessionID: "peer", Transport: "tcp"}
		answers := make(chan int, 2)
		var clientURI URI
		ready := make(chan struct{})
		go func() { // the relay: AUTH, then the stranger's SEND, then the peer's
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			rt := NewMSRPTransport(conn, relayURI)
			defer rt.Close()
			auth, err := rt.ReadChunk(context.Background())
			if err != nil {
				return
			}
			from, _ := auth.FromPath()
			clientURI = from[0]
			rt.WriteChunk(context.Background(), reply(auth, 200, HeaderUsePath, usePath))
			<-ready
			for _, sender := range []URI{{Host: "10.0.0.9", Port: 2855, SessionID: "stranger", Transport: "tcp"}, peerURI} {
				c := NewRequest(MethodSEND, []URI{clientURI}, []URI{relayURI, sender})
				c.Headers.Add(HeaderMessageID, NewMessageID())
				c.Headers.Add(HeaderByteRange, "1-0/0")
				rt.WriteChunk(context.Background(), c)
				resp, err := rt.ReadChunk(context.Background())
				if err != nil {
					return
				}
				answers <- resp.Code
			}
			io.Copy(io.Discard, conn)
		}()
		a := &AcceptorRelay{Relay: relayFor(2855), ConnectConfig: ConnectConfig{Dial: ln.Dial}}
		defer a.Cleanup()
		_, err = a.Prepare(context.Background(), URI{Host: "127.0.0.1"})
		require.NoError(t, err)
		close(ready)
		tr, err := a.Complete(context.Background(), []URI{peerURI})
		require.NoError(t, err, "the stranger's refusal did not end the wait")
		defer tr.Close()
		assert.Equal(t, 481, <-answers, "the stranger")
		assert.Equal(t, 200, <-answers, "the peer")
	})
}

// A re-AUTH whose 200 brings another Use-Path moves the session to it: our
// requests go by the new relay path. Before, the new Use-Path was kept and
// never used.
func TestRelayReauthAppliesAChangedUsePath(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ln := pipenet.Listen(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 2855})
		defer ln.Close()
		const movedPath = "msrp://127.0.0.1:2856/rsess2;tcp"
		auths := 0
		f := &fakeRelay{script: func(req *Chunk, n int) *Chunk {
			switch req.Method {
			case MethodAUTH:
				auths++
				path := usePath
				if auths > 1 {
					path = movedPath
				}
				return reply(req, 200, HeaderUsePath, path, HeaderExpires, "300")
			case MethodSEND:
				return reply(req, 200)
			}
			return nil
		}}
		peer := URI{Host: "10.0.0.2", Port: 2855, SessionID: "peer", Transport: "tcp"}
		tr, s := sessionThrough(t, ln, f, peer)
		defer s.Close()
		time.Sleep(250 * time.Second) // the renewal at 240 s
		assert.Equal(t, movedPath+" "+tr.LocalURI().String(), FormatPath(tr.FullLocalPath()))
		_, err := s.DeliverChunk(context.Background(), textSend(tr, "by the new path"))
		require.NoError(t, err)
		seen := f.seen()
		last := seen[len(seen)-1]
		assert.Equal(t, movedPath+" "+peer.String(), last.Headers.Get(HeaderToPath))
	})
}

// Over TLS, the relay's certificate must name the relay's domain, not the
// host an SRV record points to: DNS answers can be forged, so a name taken
// from one proves nothing (RFC 6125 §6.2.1). Before, the SRV target was the
// name checked.
func TestRelayTLSNameIsTheDomain(t *testing.T) {
	leakcheck.Check(t)
	for _, tc := range []struct {
		name     string
		certFor  string
		accepted bool
	}{
		{"a certificate for the domain", "relay.example.com", true},
		{"a certificate for the SRV target only", "target.elsewhere.example.net", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cert, pool := testcert.New(tc.certFor)
			ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
			require.NoError(t, err)
			f := &fakeRelay{script: func(req *Chunk, n int) *Chunk { return reply(req, 200, HeaderUsePath, usePath) }}
			var wg sync.WaitGroup
			defer func() { ln.Close(); wg.Wait() }()
			wg.Go(func() {
				for {
					conn, err := ln.Accept()
					if err != nil {
						return
					}
					wg.Go(func() { f.serve(conn) })
				}
			})
			port := ln.Addr().(*net.TCPAddr).Port
			server := dnsServer(t, map[string][]dns.RR{
				"_msrps._tcp.relay.example.com.": {srvRR("_msrps._tcp.relay.example.com.", "target.elsewhere.example.net.", uint16(port), 10, 0)},
			})
			var dialed []string
			relay := MSRPRelaySettings{Domain: "relay.example.com", Username: "alice", Password: "secret", TLSConfig: &tls.Config{RootCAs: pool}}
			c := &ConnectorRelay{Relay: relay, Resolver: &DNSResolver{Server: server}, ConnectConfig: ConnectConfig{
				Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
					dialed = append(dialed, addr) // the SRV target, which only this test can reach
					var d net.Dialer
					return d.DialContext(ctx, network, ln.Addr().String())
				},
			}}
			defer c.Cleanup()
			_, err = c.Prepare(context.Background(), URI{Host: "127.0.0.1"})
			assert.Equal(t, []string{net.JoinHostPort("target.elsewhere.example.net", fmt.Sprint(port))}, dialed)
			if tc.accepted {
				assert.NoError(t, err)
				return
			}
			var hostErr x509.HostnameError
			require.ErrorAs(t, err, &hostErr)
			assert.Equal(t, "relay.example.com", hostErr.Host)
		})
	}
}

// Relay settings in a configuration survive a JSON round trip, all but
// the password, which is never written.
func TestRelaySettingsJSONRoundTrip(t *testing.T) {
	type config struct {
		Relay MSRPRelaySettings
	}
	in := config{Relay: MSRPRelaySettings{Domain: "example.com", Username: "alice", Password: "secret", Port: 2855}}
	raw, err := json.Marshal(in)
	require.NoError(t, err)
	assert.NotContains(t, string(raw), "secret")
	var out config
	err = json.Unmarshal(raw, &out)
	assert.NoError(t, err, "settings written as JSON cannot be read back: %s", raw)
	assert.Equal(t, "example.com", out.Relay.Domain)
	assert.Equal(t, "alice", out.Relay.Username)
}

// Every field but Password and TLSConfig survives a JSON round trip, as a
// value, a pointer and a field; the password never appears, including
// through slog's JSON handler.
func TestRelaySettingsJSONAsValuePointerAndField(t *testing.T) {
	in := MSRPRelaySettings{Domain: "relay.example", Username: "alice", Password: "s3cr3t\"pw",
		Host: "10.0.0.1", Port: 2856, DisableTLS: true, Expires: 600}
	for _, v := range []any{in, &in, struct{ R MSRPRelaySettings }{in}, struct{ R *MSRPRelaySettings }{&in}} {
		b, err := json.Marshal(v)
		require.NoError(t, err)
		assert.NotContains(t, string(b), "s3cr3t")
	}
	b, err := json.Marshal(in)
	require.NoError(t, err)
	var out MSRPRelaySettings
	require.NoError(t, json.Unmarshal(b, &out))
	want := in
	want.Password = ""
	assert.Equal(t, want, out)

	zero, err := json.Marshal(MSRPRelaySettings{})
	require.NoError(t, err)
	var z MSRPRelaySettings
	require.NoError(t, json.Unmarshal(zero, &z))
	assert.Equal(t, MSRPRelaySettings{}, z)

	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "relay", in, "ptr", &in, "conn", &ConnectorRelay{Relay: in})
	assert.NotContains(t, buf.String(), "s3cr3t")
}
