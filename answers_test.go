package msrp

import (
	"context"
	"errors"
	"io"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Every request the session takes is answered, however loosely the peer
// wrote its paths: ParsePath reads any whitespace between URIs, and the
// encoder writes exactly MSRP-URI *(SP MSRP-URI), so a response must not
// copy the peer's text as it stands (that once left the peer waiting for
// an answer the writer refused in silence).

// A SEND through the peer's relay whose From-Path separates the URIs with
// a tab is delivered and answered 200.
func TestAnswerSendWithTabSeparatedFromPath(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newRecorder()
		s, peer := pipeSessionAndPeer(t, SessionConfig{KeepaliveInterval: -1, OnIncoming: rec.onChunk})
		relay := URI{Host: "relay.example.com", Port: 2855, SessionID: "rrrr", Transport: "tcp"}
		b := peer.LocalURI()
		s.Transport().SetRemotePath([]URI{relay, b}) // the peer's a=path: its relay, then itself
		c := textSend(peer, "hello")
		c.Headers.Set(HeaderFromPath, relay.String()+"\t"+b.String())
		resp := peerSendExpect(t, peer, c)
		synctest.Wait()
		chunks, _ := rec.snapshot()
		assert.Len(t, chunks, 1, "the session took the SEND")
		if assert.NotNil(t, resp, "but sent no response to it") {
			assert.Equal(t, 200, resp.Code)
		}
	})
}

// A request of an unknown method (sipsimple's FILE_OFFSET, say) whose
// From-Path has a trailing space gets the 501 it is owed.
func TestAnswerUnknownMethodWithTrailingSpace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, peer := pipeSessionAndPeer(t, SessionConfig{KeepaliveInterval: -1})
		req := peer.MakeRequest("FILE_OFFSET")
		req.Headers.Set(HeaderFromPath, peer.LocalURI().String()+" ")
		resp := peerSendExpect(t, peer, req)
		if assert.NotNil(t, resp, "no response to a request with a trailing space in From-Path") {
			assert.Equal(t, 501, resp.Code)
		}
	})
}

// A NICKNAME whose From-Path has two spaces between URIs (peer behind a
// relay): the application's Respond is written.
func TestAnswerNicknameRespondWithDoubleSpace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		respondErr := make(chan error, 1)
		s, peer := pipeSessionAndPeer(t, SessionConfig{KeepaliveInterval: -1, OnIncoming: func(s *MSRPSession, c *Chunk) {
			if c.Method == MethodNICKNAME {
				respondErr <- s.Respond(c, 200, "")
			}
		}})
		relay := URI{Host: "relay.example.com", Port: 2855, SessionID: "rrrr", Transport: "tcp"}
		b := peer.LocalURI()
		s.Transport().SetRemotePath([]URI{relay, b})
		req := peer.MakeRequest(MethodNICKNAME)
		req.Headers.Set(HeaderFromPath, relay.String()+"  "+b.String())
		req.Headers.Set(HeaderUseNickname, `"bob"`)
		resp := exchangeBeforeProbe(t, peer, req)
		require.NoError(t, <-respondErr, "Respond says it is sent")
		if assert.NotNil(t, resp, "the application's answer to the NICKNAME was never written") {
			assert.Equal(t, 200, resp.Code)
		}
	})
}

// exchangeBeforeProbe writes req as it is, lets the session (and its
// callbacks) settle, then sends a probe, and returns the response to req
// that came before the probe's, or nil.
func exchangeBeforeProbe(t *testing.T, peer *MSRPTransport, req *Chunk) *Chunk {
	t.Helper()
	probe := peer.MakeRequest("PROBE")
	done := make(chan *Chunk, 1)
	go func() {
		var got *Chunk
		for {
			c, err := peer.ReadChunk(context.Background())
			if err != nil || c.TransactionID == probe.TransactionID {
				done <- got
				return
			}
			if c.TransactionID == req.TransactionID {
				got = c
			}
		}
	}()
	_, err := peer.netConn().Write(encodeUnchecked(req))
	require.NoError(t, err)
	synctest.Wait()
	require.NoError(t, peer.WriteChunk(context.Background(), probe))
	return <-done
}

// A SEND whose From-Path is malformed but begins like an MSRP URI is owed
// a 400 (RFC 4975 §7.3), sent along the path the session knows since the
// request's own cannot be echoed.
func TestAnswerMalformedFromPathGets400(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, peer := pipeSessionAndPeer(t, SessionConfig{KeepaliveInterval: -1})
		c := textSend(peer, "hello")
		c.Headers.Set(HeaderFromPath, "msrp://[::1/s;tcp")
		resp := peerSendExpect(t, peer, c)
		if assert.NotNil(t, resp, "no 400 for a malformed From-Path") {
			assert.Equal(t, 400, resp.Code)
		}
	})
}

// The failure REPORT for a message whose MessageWriter failed carries the
// writer's error text in its Status comment, and is sent even when that
// text has a line break (errors.Join writes one) or bytes that are not
// UTF-8 (a file name): the comment is cleaned, not refused.
func TestAnswerFailureReportCarriesWriterErrorText(t *testing.T) {
	for name, werr := range map[string]error{
		"two lines":  errors.Join(errors.New("write /spool/x"), errors.New("no space left on device")),
		"not UTF-8":  errors.New("open /spool/caf\xe9.txt: permission denied"),
		"plain text": errors.New("disk full"),
	} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				_, peer := pipeSessionAndPeer(t, SessionConfig{KeepaliveInterval: -1, MessageConfig: MessageConfig{
					OnMessage:     func(*MSRPSession, *IncomingMessage) {},
					MessageWriter: func(*MSRPSession, *IncomingMessage) io.Writer { return errWriter{werr} },
				}})
				first := messagePiece(peer, "mid12345", "hello", "1-5/10", FlagContinued)
				probe := peer.MakeRequest("PROBE")
				var report *Chunk
				done := make(chan struct{})
				go func() {
					defer close(done)
					for {
						c, err := peer.ReadChunk(context.Background())
						if err != nil || c.TransactionID == probe.TransactionID {
							return
						}
						if c.Method == MethodREPORT {
							report = c
						}
					}
				}()
				require.NoError(t, peer.WriteChunk(context.Background(), first))
				synctest.Wait()
				require.NoError(t, peer.WriteChunk(context.Background(), probe))
				<-done
				if assert.NotNil(t, report, "no failure REPORT") {
					st, err := report.Status()
					assert.NoError(t, err)
					assert.Equal(t, 413, st.Code)
				}
			})
		})
	}
}

type errWriter struct{ err error }

func (w errWriter) Write([]byte) (int, error) { return 0, w.err }

// A chunk the encoder would refuse is refused when it is queued, to the
// caller: SendChunk without a callback, and Respond, have nobody to tell
// later. Before, both returned nil and the writer dropped the chunk.
func TestSessionRefusesAnUnwritableChunkWhenQueued(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var nickname *Chunk
		s, peer := pipeSessionAndPeer(t, SessionConfig{KeepaliveInterval: -1, OnIncoming: func(_ *MSRPSession, c *Chunk) {
			if c.Method == MethodNICKNAME {
				nickname = c
			}
		}})
		bad := s.Transport().MakeRequest(MethodSEND)
		bad.Headers.Set(HeaderMessageID, "not an id because of its spaces")
		assert.ErrorIs(t, s.SendChunk(bad, nil), ErrInvalidChunk)
		_, err := s.DeliverChunk(context.Background(), bad)
		assert.ErrorIs(t, err, ErrInvalidChunk)

		req := peer.MakeRequest(MethodNICKNAME)
		req.Headers.Set(HeaderUseNickname, `"bob"`)
		go func() { _ = peer.WriteChunk(context.Background(), req) }()
		synctest.Wait()
		require.NotNil(t, nickname)
		// A comment is free text, cleaned rather than refused; a bad
		// code is the application's mistake.
		assert.NoError(t, s.Respond(nickname, 200, "fine\r\nInjected: header"))
		resp := peerRead(t, peer)
		assert.Equal(t, "fine  Injected: header", resp.Comment)
		assert.ErrorIs(t, s.Respond(nickname, 1000, ""), ErrInvalidChunk)
	})
}

// Requests whose paths are odd, missing or broken each get their answer,
// and the answer's paths are in canonical form.
func TestAnswerOddPaths(t *testing.T) {
	cases := []struct {
		name, header, value, method string
		code                        int
	}{
		{"upper-case scheme", HeaderFromPath, "MSRP://127.0.0.1:2/bbbb;tcp", MethodSEND, 200},
		{"NEL between URIs", HeaderFromPath, "msrp://relay.example:2855/r;tcp\u0085msrp://127.0.0.1:2/bbbb;tcp", "FILE_OFFSET", 501},
		{"no From-Path", HeaderFromPath, "", MethodSEND, 400},
		{"no To-Path", HeaderToPath, "", MethodSEND, 400},
		{"garbage To-Path", HeaderToPath, "sip:alice@example.com", MethodSEND, 400},
		{"garbage both", HeaderFromPath + "+" + HeaderToPath, "x y", "FOO", 501},
		{"URI params", HeaderFromPath, "msrp://127.0.0.1:2/bbbb;tcp;x=y", "FOO", 501},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				_, peer := pipeSessionAndPeer(t, SessionConfig{KeepaliveInterval: -1, AcceptTypes: []string{"*"}})
				var c *Chunk
				if tc.method == MethodSEND {
					c = textSend(peer, "hi")
				} else {
					c = peer.MakeRequest(tc.method)
				}
				for _, h := range []string{HeaderFromPath, HeaderToPath} {
					if tc.header == h || tc.header == HeaderFromPath+"+"+HeaderToPath {
						if tc.value == "" {
							c.Headers.Del(h)
						} else {
							c.Headers.Set(h, tc.value)
						}
					}
				}
				resp := peerSendExpect(t, peer, c)
				if assert.NotNil(t, resp, "no answer") {
					if tc.code != 200 || resp.Code != 200 {
						assert.Equal(t, tc.code, resp.Code, resp.Comment)
					}
					_, err := resp.ToPath()
					assert.NoError(t, err)
					_, err = resp.FromPath()
					assert.NoError(t, err)
				}
			})
		})
	}
}
