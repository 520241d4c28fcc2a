package msrp

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/go-msrp/msrp/internal/leakcheck"
	"github.com/go-msrp/msrp/internal/pipenet"
	"github.com/go-msrp/msrp/internal/testcert"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// tlsConfigs returns a server config with a fresh certificate for host and a
// client config that trusts it.
func tlsConfigs(host string) (server, client *tls.Config) {
	cert, pool := testcert.New(host)
	return &tls.Config{Certificates: []tls.Certificate{cert}}, &tls.Config{RootCAs: pool}
}

// preparedAcceptor returns an AcceptorDirect listening on 127.0.0.1 and its
// path; the test cleans it up.
func preparedAcceptor(t *testing.T, cfg ConnectConfig, useTLS bool) (*AcceptorDirect, []URI) {
	t.Helper()
	acceptor := &AcceptorDirect{ConnectConfig: cfg}
	t.Cleanup(func() { acceptor.Cleanup() })
	path, err := acceptor.Prepare(context.Background(), URI{Host: "127.0.0.1", UseTLS: useTLS})
	require.NoError(t, err)
	return acceptor, path
}

type pairResult struct {
	t   *MSRPTransport
	err error
}

// connectPair binds a ConnectorDirect to an AcceptorDirect on host and
// returns the two transports (connector's first).
func connectPair(t *testing.T, host string, useTLS bool, ctor, acc ConnectConfig) (*MSRPTransport, *MSRPTransport) {
	t.Helper()
	ctx := context.Background()
	acceptor := &AcceptorDirect{ConnectConfig: acc}
	connector := &ConnectorDirect{ConnectConfig: ctor}
	t.Cleanup(func() { acceptor.Cleanup(); connector.Cleanup() })

	accPath, err := acceptor.Prepare(ctx, URI{Host: host, UseTLS: useTLS})
	require.NoError(t, err)
	ctorPath, err := connector.Prepare(ctx, URI{Host: host, UseTLS: useTLS})
	require.NoError(t, err)
	require.NotZero(t, accPath[0].Port, "the acceptor's path carries the real port")

	done := make(chan pairResult, 1)
	go func() {
		tr, err := acceptor.Complete(ctx, ctorPath)
		done <- pairResult{tr, err}
	}()
	ct, err := connector.Complete(ctx, accPath)
	require.NoError(t, err)
	r := <-done
	require.NoError(t, r.err)
	t.Cleanup(func() { ct.Close(); r.t.Close() })
	return ct, r.t
}

func TestDirectPair(t *testing.T) {
	for _, host := range []string{"127.0.0.1", "::1"} {
		for _, useTLS := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/tls=%v", host, useTLS), func(t *testing.T) {
				leakcheck.Check(t)
				var ctor, acc ConnectConfig
				if useTLS {
					acc.TLSConfig, ctor.TLSConfig = tlsConfigs(host)
				}
				ct, at := connectPair(t, host, useTLS, ctor, acc)
				_, isTLS := ct.netConn().(*tls.Conn)
				assert.Equal(t, useTLS, isTLS)
				assert.True(t, pathEqual(ct.FullRemotePath(), at.FullLocalPath()))
				assert.True(t, pathEqual(at.FullRemotePath(), ct.FullLocalPath()))
				exchange(t, ct, at)
				exchange(t, at, ct)
				require.NoError(t, ct.Close())
				_, err := at.ReadChunk(context.Background())
				assert.ErrorIs(t, err, io.EOF, "read after the peer closed")
				_, err = at.ReadChunk(context.Background())
				assert.ErrorIs(t, err, io.EOF, "and again: the error sticks")
			})
		}
	}
}

// exchange sends a SEND with a body from a to b, checks it there, answers
// 200 and checks the response at a.
func exchange(t *testing.T, a, b *MSRPTransport) {
	t.Helper()
	ctx := context.Background()
	req := a.MakeSendRequest("", []byte("Hello, there!"), 1, 0)
	req.Headers.Set(HeaderContentType, "text/plain")
	require.NoError(t, a.WriteChunk(ctx, req))
	got, err := b.ReadChunk(ctx)
	require.NoError(t, err)
	assert.Equal(t, "Hello, there!", string(got.Data))
	require.NoError(t, b.CheckIncomingSENDChunk(got))
	require.NoError(t, b.WriteResponse(ctx, got, 200, ""))
	resp, err := a.ReadChunk(ctx)
	require.NoError(t, err)
	assert.Equal(t, req.TransactionID, resp.TransactionID)
	assert.Equal(t, 200, resp.Code)
}

func TestMsrplibBug5And7AcceptorRefusesWrongPeerAndWaits(t *testing.T) {
	leakcheck.Check(t)
	ctx := context.Background()
	acceptor, accPath := preparedAcceptor(t, ConnectConfig{}, false)

	right := &ConnectorDirect{}
	rightPath, err := right.Prepare(ctx, URI{Host: "127.0.0.1"})
	require.NoError(t, err)
	done := make(chan pairResult, 1)
	go func() {
		tr, err := acceptor.Complete(ctx, rightPath)
		done <- pairResult{tr, err}
	}()

	// A stranger with another session id is refused with 481 and not bound.
	stranger := &ConnectorDirect{}
	_, err = stranger.Prepare(ctx, URI{Host: "127.0.0.1"})
	require.NoError(t, err)
	_, err = stranger.Complete(ctx, accPath)
	var te *TransactionError
	require.ErrorAs(t, err, &te)
	assert.Equal(t, 481, te.Code)

	// A peer aiming at the wrong To-Path is refused too.
	wrongTo := accPath[0]
	wrongTo.SessionID = "not-the-session"
	_, err = right.Complete(ctx, []URI{wrongTo})
	require.ErrorAs(t, err, &te)
	assert.Equal(t, 481, te.Code)

	// The right peer still binds.
	right2 := &ConnectorDirect{}
	_, err = right2.Prepare(ctx, rightPath[0])
	require.NoError(t, err)
	ct, err := right2.Complete(ctx, accPath)
	require.NoError(t, err)
	defer ct.Close()
	r := <-done
	require.NoError(t, r.err)
	defer r.t.Close()
	exchange(t, ct, r.t)
}

func TestCompleteTimeouts(t *testing.T) {
	t.Run("nobody connects", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ln := pipenet.Listen(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 2855})
			acceptor := &AcceptorDirect{ConnectConfig: ConnectConfig{Listen: func(context.Context, string, string) (net.Listener, error) { return ln, nil }}}
			_, err := acceptor.Prepare(context.Background(), URI{Host: "127.0.0.1"})
			require.NoError(t, err)
			start := time.Now()
			_, err = acceptor.Complete(context.Background(), []URI{{Host: "127.0.0.1", SessionID: "peer"}})
			assert.ErrorIs(t, err, ErrIncomingConnectTimeout)
			assert.ErrorIs(t, err, ErrTimeout)
			assert.ErrorIs(t, err, context.DeadlineExceeded)
			assert.Equal(t, DefaultTimeout, time.Since(start), "msrplib's 30 s, on the fake clock")
			require.NoError(t, acceptor.Cleanup())
		})
	})
	t.Run("peer connects and stays silent", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ln := pipenet.Listen(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 2855})
			acceptor := &AcceptorDirect{ConnectConfig: ConnectConfig{
				BindTimeout: 5 * time.Second,
				Listen:      func(context.Context, string, string) (net.Listener, error) { return ln, nil },
			}}
			_, err := acceptor.Prepare(context.Background(), URI{Host: "127.0.0.1"})
			require.NoError(t, err)
			go func() {
				conn, err := ln.Dial(context.Background(), "tcp", "")
				if err == nil {
					io.Copy(io.Discard, conn) // silent until the acceptor hangs up
					conn.Close()
				}
			}()
			start := time.Now()
			_, err = acceptor.Complete(context.Background(), []URI{{Host: "127.0.0.1", SessionID: "peer"}})
			assert.ErrorIs(t, err, ErrBindSessionTimeout)
			assert.Equal(t, DefaultTimeout, time.Since(start))
			require.NoError(t, acceptor.Cleanup())
			synctest.Wait()
		})
	})
	t.Run("acceptor never answers the binding SEND", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ln := pipenet.Listen(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 2855})
			defer ln.Close()
			go func() {
				conn, err := ln.Accept()
				if err == nil {
					buf := make([]byte, 4096)
					for { // read and ignore
						if _, err := conn.Read(buf); err != nil {
							return
						}
					}
				}
			}()
			connector := &ConnectorDirect{ConnectConfig: ConnectConfig{Dial: ln.Dial}}
			_, err := connector.Prepare(context.Background(), URI{Host: "127.0.0.1"})
			require.NoError(t, err)
			start := time.Now()
			_, err = connector.Complete(context.Background(), []URI{{Host: "127.0.0.1", SessionID: "peer"}})
			assert.ErrorIs(t, err, ErrBindSessionTimeout)
			assert.Equal(t, DefaultTimeout, time.Since(start))
		})
	})
	t.Run("connect never completes", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			connector := &ConnectorDirect{ConnectConfig: ConnectConfig{
				ConnectTimeout: 3 * time.Second,
				Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
					<-ctx.Done()
					return nil, ctx.Err()
				},
			}}
			_, err := connector.Prepare(context.Background(), URI{Host: "127.0.0.1"})
			require.NoError(t, err)
			start := time.Now()
			_, err = connector.Complete(context.Background(), []URI{{Host: "127.0.0.1", SessionID: "peer"}})
			assert.ErrorIs(t, err, ErrConnectTimeout)
			assert.Equal(t, 3*time.Second, time.Since(start))
		})
	})
	t.Run("caller's deadline is shorter", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ln := pipenet.Listen(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 2855})
			acceptor := &AcceptorDirect{ConnectConfig: ConnectConfig{Listen: func(context.Context, string, string) (net.Listener, error) { return ln, nil }}}
			_, err := acceptor.Prepare(context.Background(), URI{Host: "127.0.0.1"})
			require.NoError(t, err)
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_, err = acceptor.Complete(ctx, []URI{{Host: "127.0.0.1", SessionID: "peer"}})
			assert.Equal(t, context.DeadlineExceeded, err, "the caller's own deadline, not a library timeout")
			assert.NotErrorIs(t, err, ErrIncomingConnectTimeout)
		})
	})
}

func TestCancel(t *testing.T) {
	leakcheck.Check(t)
	t.Run("during connect", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		connector := &ConnectorDirect{ConnectConfig: ConnectConfig{Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			cancel()
			<-ctx.Done()
			return nil, ctx.Err()
		}}}
		_, err := connector.Prepare(ctx, URI{Host: "127.0.0.1"})
		require.NoError(t, err)
		_, err = connector.Complete(ctx, []URI{{Host: "127.0.0.1", SessionID: "peer"}})
		assert.Equal(t, context.Canceled, err)
	})
	t.Run("during bind", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		defer ln.Close()
		accepted := make(chan net.Conn, 1)
		go func() {
			c, err := ln.Accept()
			if err == nil {
				accepted <- c
			}
		}()
		ctx, cancel := context.WithCancel(context.Background())
		connector := &ConnectorDirect{}
		_, err = connector.Prepare(ctx, URI{Host: "127.0.0.1"})
		require.NoError(t, err)
		go func() {
			c := <-accepted
			defer c.Close()
			buf := make([]byte, 1024)
			c.Read(buf) // the binding SEND arrives; never answer it
			cancel()
			c.Read(buf)
		}()
		port := ln.Addr().(*net.TCPAddr).Port
		_, err = connector.Complete(ctx, []URI{{Host: "127.0.0.1", Port: port, SessionID: "peer"}})
		assert.Equal(t, context.Canceled, err)
	})
	t.Run("Cleanup during an acceptor's Complete", func(t *testing.T) {
		acceptor := &AcceptorDirect{}
		_, err := acceptor.Prepare(context.Background(), URI{Host: "127.0.0.1"})
		require.NoError(t, err)
		done := make(chan error, 1)
		go func() {
			_, err := acceptor.Complete(context.Background(), []URI{{Host: "127.0.0.1", SessionID: "peer"}})
			done <- err
		}()
		time.Sleep(20 * time.Millisecond)
		require.NoError(t, acceptor.Cleanup())
		assert.ErrorIs(t, <-done, context.Canceled)
		require.NoError(t, acceptor.Cleanup(), "twice is fine")
		_, err = acceptor.Complete(context.Background(), []URI{{Host: "127.0.0.1"}})
		assert.Error(t, err)
	})
	t.Run("during read, and the transport stays usable", func(t *testing.T) {
		ct, at := connectPair(t, "127.0.0.1", false, ConnectConfig{}, ConnectConfig{})
		ctx, cancel := context.WithCancel(context.Background())
		go func() { time.Sleep(20 * time.Millisecond); cancel() }()
		_, err := at.ReadChunk(ctx)
		assert.Equal(t, context.Canceled, err)
		// A deadline in the past, too.
		past, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
		defer cancel2()
		_, err = at.ReadChunk(past)
		assert.Equal(t, context.DeadlineExceeded, err)
		exchange(t, ct, at)
	})
	t.Run("mid-chunk read resumes", func(t *testing.T) {
		ct, at := connectPair(t, "127.0.0.1", false, ConnectConfig{}, ConnectConfig{})
		req := ct.MakeSendRequest("", []byte("split body"), 1, 0)
		req.Headers.Set(HeaderContentType, "text/plain")
		raw, err := req.Encode(nil)
		require.NoError(t, err)
		_, err = ct.netConn().Write(raw[:len(raw)-10])
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_, err = at.ReadChunk(ctx)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		_, err = ct.netConn().Write(raw[len(raw)-10:])
		require.NoError(t, err)
		got, err := at.ReadChunk(context.Background())
		require.NoError(t, err)
		assert.Equal(t, "split body", string(got.Data))
	})
}

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
		close(accepted)
	}()
	a, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	b := <-accepted
	require.NotNil(t, b)
	return a, b
}

// Both ends think they are active and bind at once (msrplib 0.14.0 deadlock).
func TestBothSidesActive(t *testing.T) {
	leakcheck.Check(t)
	for _, sessmatch := range []bool{false, true} {
		t.Run(fmt.Sprintf("sessmatch=%v", sessmatch), func(t *testing.T) {
			a, b := tcpPair(t)
			aURI := URI{Host: "10.0.0.1", Port: 2855, SessionID: "aaaa", Transport: "tcp"}
			bURI := URI{Host: "10.0.0.2", Port: 2855, SessionID: "bbbb", Transport: "tcp"}
			ta, tb := NewMSRPTransport(a, aURI), NewMSRPTransport(b, bURI)
			ta.UseSessmatch, tb.UseSessmatch = sessmatch, sessmatch
			defer ta.Close()
			defer tb.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			errs := make(chan error, 2)
			go func() { errs <- ta.Bind(ctx, []URI{bURI}) }()
			go func() { errs <- tb.Bind(ctx, []URI{aURI}) }()
			require.NoError(t, <-errs)
			require.NoError(t, <-errs)
			exchange(t, ta, tb)
		})
	}
}

// The binding 200 is matched by transaction id (msrplib §11.2 #6).
func TestMsrplibBug6BindChecksTransactionID(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := net.Pipe()
		local := URI{Host: "10.0.0.1", Port: 2855, SessionID: "aaaa", Transport: "tcp"}
		remote := URI{Host: "10.0.0.2", Port: 2855, SessionID: "bbbb", Transport: "tcp"}
		ta := NewMSRPTransport(a, local)
		peer := NewMSRPTransport(b, remote)
		peer.SetRemotePath([]URI{local})
		defer ta.Close()
		defer peer.Close()
		go func() {
			ctx := context.Background()
			req, err := peer.ReadChunk(ctx)
			if err != nil {
				return
			}
			stray, _ := NewResponse(req, 200, "")
			stray.TransactionID = "someoneelse"
			peer.WriteChunk(ctx, stray)
			refusal, _ := NewResponse(req, 481, "")
			peer.WriteChunk(ctx, refusal)
		}()
		err := ta.Bind(context.Background(), []URI{remote})
		var te *TransactionError
		require.ErrorAs(t, err, &te, "the stray 200 was not taken as the answer")
		assert.Equal(t, 481, te.Code)
	})
}

// A first SEND with a body binds, is answered once, and its body is kept
// (msrplib §11.2 #5 answered it twice).
func TestMsrplibBug5FirstSendWithBodyAnsweredOnce(t *testing.T) {
	leakcheck.Check(t)
	ctx := context.Background()
	acceptor, accPath := preparedAcceptor(t, ConnectConfig{}, false)
	peerURI := URI{Host: "127.0.0.1", Port: 2855, SessionID: "peer1234", Transport: "tcp"}
	done := make(chan pairResult, 1)
	go func() {
		tr, err := acceptor.Complete(ctx, []URI{peerURI})
		done <- pairResult{tr, err}
	}()
	conn, err := net.Dial("tcp", accPath[0].HostPort())
	require.NoError(t, err)
	peer := NewMSRPTransport(conn, peerURI)
	peer.SetRemotePath(accPath)
	defer peer.Close()
	first := peer.MakeSendRequest("", []byte("first words"), 1, 0)
	first.Headers.Set(HeaderContentType, "text/plain")
	require.NoError(t, peer.WriteChunk(ctx, first))

	r := <-done
	require.NoError(t, r.err)
	defer r.t.Close()
	got, err := r.t.ReadChunk(ctx)
	require.NoError(t, err)
	assert.Equal(t, "first words", string(got.Data))
	require.NoError(t, r.t.WriteResponse(ctx, got, 200, ""))

	assertAnsweredOnce(t, peer, r.t, first)
}

// assertAnsweredOnce checks that the peer gets exactly one response to req
// from the transport that took the binding: after its response, that side
// sends a request of its own, which must come next.
func assertAnsweredOnce(t *testing.T, peer, bound *MSRPTransport, req *Chunk) {
	t.Helper()
	marker := bound.MakeSendRequest("", nil, 1, 0)
	require.NoError(t, bound.WriteChunk(context.Background(), marker))
	resp := peerRead(t, peer)
	assert.Equal(t, req.TransactionID, resp.TransactionID)
	assert.Equal(t, marker.TransactionID, peerRead(t, peer).TransactionID, "answered once only")
}

func TestSelfSignedCertificate(t *testing.T) {
	cert, err := SelfSignedCertificate("127.0.0.1", "peer.example.com")
	require.NoError(t, err)
	require.NotNil(t, cert.Leaf)
	assert.Equal(t, "127.0.0.1", cert.Leaf.IPAddresses[0].String())
	assert.Equal(t, []string{"peer.example.com"}, cert.Leaf.DNSNames)
	assert.True(t, cert.Leaf.NotAfter.After(time.Now().AddDate(0, 11, 0)))
	fp, err := CertificateFingerprint(cert.Certificate[0], "sha-256")
	require.NoError(t, err)
	verify, err := VerifyFingerprint(fp)
	require.NoError(t, err)
	assert.NoError(t, verify(tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert.Leaf}}))
}

// With no remote path, the acceptor takes the first peer that names its
// session, and learns the peer's path.
func TestAcceptorLearnsPeerPath(t *testing.T) {
	leakcheck.Check(t)
	ctx := context.Background()
	acceptor, accPath := preparedAcceptor(t, ConnectConfig{}, false)
	done := make(chan pairResult, 1)
	go func() {
		tr, err := acceptor.Complete(ctx, nil)
		done <- pairResult{tr, err}
	}()
	connector := &ConnectorDirect{}
	ctorPath, err := connector.Prepare(ctx, URI{Host: "127.0.0.1"})
	require.NoError(t, err)
	ct, err := connector.Complete(ctx, accPath)
	require.NoError(t, err)
	defer ct.Close()
	r := <-done
	require.NoError(t, r.err)
	defer r.t.Close()
	assert.True(t, pathEqual(ctorPath, r.t.FullRemotePath()))
	exchange(t, r.t, ct)
}

func TestFingerprint(t *testing.T) {
	cert, _ := testcert.New("127.0.0.1")
	other, _ := testcert.New("127.0.0.1")
	for _, hashName := range []string{"sha-1", "sha-256", "sha-384", "sha-512"} {
		fp, err := CertificateFingerprint(cert.Certificate[0], hashName)
		require.NoError(t, err)
		assert.True(t, strings.HasPrefix(fp, hashName+" "))
		verify, err := VerifyFingerprint(fp)
		require.NoError(t, err)
		require.NoError(t, verify(tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert.Leaf}}))
		assert.ErrorIs(t, verify(tls.ConnectionState{PeerCertificates: []*x509.Certificate{other.Leaf}}), ErrFingerprintMismatch)
		assert.ErrorIs(t, verify(tls.ConnectionState{}), ErrFingerprintMismatch)
		lower, err := VerifyFingerprint(strings.ToUpper(hashName) + " " + strings.ToLower(fp[len(hashName)+1:]))
		require.NoError(t, err)
		require.NoError(t, lower(tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert.Leaf}}))
	}
	for _, bad := range []string{"", "sha-256", "md5 AB:CD", "sha-256 XY:ZZ", "sha-256 AB:CD"} {
		_, err := VerifyFingerprint(bad)
		assert.Error(t, err, bad)
	}
	_, err := CertificateFingerprint(cert.Certificate[0], "md5")
	assert.Error(t, err)
}

// Self-signed certificates proven by SDP a=fingerprint, both ways, over a
// real TLS connection; a wrong fingerprint refuses the connection.
func TestFingerprintOverTLS(t *testing.T) {
	leakcheck.Check(t)
	serverCert, _ := testcert.New("127.0.0.1")
	clientCert, _ := testcert.New("client")
	serverFP, err := CertificateFingerprint(serverCert.Certificate[0], "sha-256")
	require.NoError(t, err)
	clientFP, err := CertificateFingerprint(clientCert.Certificate[0], "sha-256")
	require.NoError(t, err)
	verifyServer, err := VerifyFingerprint(serverFP)
	require.NoError(t, err)
	verifyClient, err := VerifyFingerprint(clientFP)
	require.NoError(t, err)

	acc := ConnectConfig{TLSConfig: &tls.Config{
		Certificates: []tls.Certificate{serverCert}, ClientAuth: tls.RequireAnyClientCert,
		InsecureSkipVerify: true, VerifyConnection: verifyClient,
	}}
	ctor := ConnectConfig{TLSConfig: &tls.Config{
		Certificates: []tls.Certificate{clientCert}, InsecureSkipVerify: true, VerifyConnection: verifyServer,
	}}
	ct, at := connectPair(t, "127.0.0.1", true, ctor, acc)
	exchange(t, ct, at)

	t.Run("wrong fingerprint", func(t *testing.T) {
		impostor, _ := testcert.New("127.0.0.1")
		acc.TLSConfig.Certificates = []tls.Certificate{impostor}
		acc.ConnectTimeout = 500 * time.Millisecond
		ctx := context.Background()
		acceptor, accPath := preparedAcceptor(t, acc, true)
		go acceptor.Complete(ctx, []URI{{Host: "127.0.0.1", SessionID: "x"}})
		connector := &ConnectorDirect{ConnectConfig: ctor}
		_, err = connector.Prepare(ctx, URI{Host: "127.0.0.1", UseTLS: true})
		require.NoError(t, err)
		_, err = connector.Complete(ctx, accPath)
		assert.ErrorIs(t, err, ErrFingerprintMismatch)
	})
}

// Certificate verification is on by default: a self-signed certificate the
// client has not been told to trust is refused.
func TestTLSVerifiesByDefault(t *testing.T) {
	leakcheck.Check(t)
	server, _ := tlsConfigs("127.0.0.1")
	ctx := context.Background()
	acceptor, accPath := preparedAcceptor(t, ConnectConfig{TLSConfig: server, ConnectTimeout: 500 * time.Millisecond}, true)
	go acceptor.Complete(ctx, []URI{{Host: "127.0.0.1", SessionID: "x"}})
	connector := &ConnectorDirect{}
	_, err := connector.Prepare(ctx, URI{Host: "127.0.0.1", UseTLS: true})
	require.NoError(t, err)
	_, err = connector.Complete(ctx, accPath)
	var unknown x509.UnknownAuthorityError
	assert.ErrorAs(t, err, &unknown)

	old := &tls.Config{MaxVersion: tls.VersionTLS11}
	assert.Equal(t, uint16(tls.VersionTLS12), cloneTLS(old).MinVersion, "RFC 8996 floor")
	assert.Zero(t, old.MinVersion, "the caller's config is not modified")
}

func TestPrepareChecks(t *testing.T) {
	ctx := context.Background()
	_, err := (&AcceptorDirect{}).Prepare(ctx, URI{Host: "127.0.0.1", UseTLS: true})
	assert.ErrorContains(t, err, "certificate")

	c := &ConnectorDirect{}
	path, err := c.Prepare(ctx, URI{})
	require.NoError(t, err)
	assert.NotEmpty(t, path[0].Host)
	assert.Equal(t, DefaultPort, path[0].Port)
	assert.Len(t, path[0].SessionID, 24)
	assert.Equal(t, "tcp", path[0].Transport)
	_, err = (&ConnectorDirect{}).Complete(ctx, []URI{{Host: "h"}})
	assert.ErrorContains(t, err, "before Prepare")
	_, err = c.Complete(ctx, nil)
	assert.Error(t, err, "a connector needs the peer's path")
	require.NoError(t, c.Cleanup())
	_, err = c.Prepare(ctx, URI{})
	assert.ErrorIs(t, err, errCleanedUp)

	conn := GetConnector(nil, ConnectConfig{UseSessmatch: true})
	assert.True(t, conn.(*ConnectorDirect).UseSessmatch)
	assert.IsType(t, &AcceptorDirect{}, GetAcceptor(nil, ConnectConfig{}))
	relay := &MSRPRelaySettings{Domain: "example.com", Username: "u", Password: "p"}
	rconn := GetConnector(relay, ConnectConfig{UseSessmatch: true})
	require.IsType(t, &ConnectorRelay{}, rconn)
	assert.Equal(t, "example.com", rconn.(*ConnectorRelay).Relay.Domain)
	assert.True(t, rconn.(*ConnectorRelay).UseSessmatch)
	assert.IsType(t, &AcceptorRelay{}, GetAcceptor(relay, ConnectConfig{}))
}

func TestConcurrentWriters(t *testing.T) {
	leakcheck.Check(t)
	ct, at := connectPair(t, "127.0.0.1", false, ConnectConfig{}, ConnectConfig{})
	const writers, each = 8, 200
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				body := []byte(strings.Repeat(fmt.Sprintf("w%d-%d|", w, i), 1+i%700))
				req := ct.MakeSendRequest("", body, 1, 0)
				req.Headers.Set(HeaderContentType, "text/plain")
				if err := ct.WriteChunk(context.Background(), req); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	for range writers * each {
		c, err := at.ReadChunk(context.Background())
		require.NoError(t, err)
		r, err := c.ByteRange()
		require.NoError(t, err)
		require.Equal(t, int64(len(c.Data)), r.Total)
		require.NoError(t, at.CheckIncomingSENDChunk(c))
	}
	wg.Wait()
}

func TestParseRelaySettings(t *testing.T) {
	r, err := ParseRelaySettings("msrps://alice:pw@relay.example.com:2856")
	require.NoError(t, err)
	assert.Equal(t, "relay.example.com", r.Host)
	assert.Equal(t, "relay.example.com", r.Domain)
	assert.Equal(t, 2856, r.Port)
	assert.Equal(t, "alice", r.Username)
	assert.Equal(t, "pw", r.Password)
	assert.False(t, r.DisableTLS)
	r, err = ParseRelaySettings("msrp://bob:x@127.0.0.1")
	require.NoError(t, err)
	assert.True(t, r.DisableTLS)
	assert.Zero(t, r.Port)
	for _, bad := range []string{"relay.example.com", "http://a:b@c", "msrp://c", "msrps://u:p@h:port", "msrps://u:p@h:99999", "msrp://:pw@h"} {
		_, err := ParseRelaySettings(bad)
		assert.Error(t, err, bad)
	}
	_, err = ParseRelaySettings("msrps://u:topsecret@h:port")
	assert.NotContains(t, err.Error(), "topsecret")
}

func TestMsrplibBug17PasswordNeverPrinted(t *testing.T) {
	r := &MSRPRelaySettings{Domain: "example.com", Username: "alice", Password: "s3cret", Port: 2856}
	assert.Equal(t, "MSRPRelay msrps://alice@example.com:2856;tcp", r.String())
	assert.Equal(t, "msrps://example.com:2856;tcp", r.URI().String())

	// Every way a program prints settings or the connectors holding them:
	// value or pointer, any fmt verb, slog's text and JSON handlers.
	connector := &ConnectorRelay{Relay: *r}
	acceptor := &AcceptorRelay{Relay: *r}
	things := map[string]any{
		"value": *r, "pointer": r, "*ConnectorRelay": connector, "*AcceptorRelay": acceptor,
		"GetConnector's": GetConnector(r, ConnectConfig{}), "in a slice": []MSRPRelaySettings{*r},
		"in a map": map[string]MSRPRelaySettings{"k": *r},
	}
	for name, thing := range things {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T"} {
			out := fmt.Sprintf(verb, thing)
			assert.NotContains(t, out, "s3cret", "%s printed with %s", name, verb)
			assert.NotContains(t, out, hex.EncodeToString([]byte("s3cret")), "%s printed with %s", name, verb)
			assert.NotContains(t, strings.ToLower(out), hex.EncodeToString([]byte("s3cret")), "%s printed with %s", name, verb)
		}
		assert.NotContains(t, fmt.Sprint(thing), "s3cret", name)
		assert.NotContains(t, fmt.Sprintln(thing), "s3cret", name)
		for hname, newHandler := range map[string]func(w *bytes.Buffer) slog.Handler{
			"text": func(w *bytes.Buffer) slog.Handler { return slog.NewTextHandler(w, nil) },
			"json": func(w *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(w, nil) },
		} {
			var buf bytes.Buffer
			slog.New(newHandler(&buf)).Info("relay", "it", thing, slog.Any("any", thing), slog.Group("g", "it", thing))
			assert.NotContains(t, buf.String(), "s3cret", "%s in slog's %s handler", name, hname)
		}
	}
	raw, err := json.Marshal(struct{ Relay MSRPRelaySettings }{*r})
	require.NoError(t, err)
	assert.NotContains(t, string(raw), "s3cret")
	r.DisableTLS, r.Host = true, "relay.example.com"
	assert.Equal(t, "MSRPRelay msrp://alice@relay.example.com:2856;tcp", r.String())
}
