package webrtc_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	pion "github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-msrp/msrp"
	"github.com/go-msrp/msrp/internal/leakcheck"
	msrpwebrtc "github.com/go-msrp/msrp/webrtc"
)

// loopbackAPI is a pion API that gathers only loopback host candidates and
// no mDNS ones, so that two peers in one process connect with no network.
func loopbackAPI() *pion.API {
	var se pion.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	se.SetNetworkTypes([]pion.NetworkType{pion.NetworkTypeUDP4})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	return pion.NewAPI(pion.WithSettingEngine(se))
}

// peer is one end: its peer connection and its MSRP data channel.
type peer struct {
	pc   *pion.PeerConnection
	conn *msrpwebrtc.Conn
}

// newPeer makes a peer connection with the MSRP channel negotiated in SDP,
// as RFC 8873 wants: stream id 0, subprotocol msrp.
func newPeer(t testing.TB, protocol string, cfg msrpwebrtc.Config) (*peer, error) {
	pc, err := loopbackAPI().NewPeerConnection(pion.Configuration{})
	require.NoError(t, err)
	t.Cleanup(func() { pc.Close() })
	negotiated, id := true, uint16(0)
	dc, err := pc.CreateDataChannel("chat", &pion.DataChannelInit{Negotiated: &negotiated, ID: &id, Protocol: &protocol})
	require.NoError(t, err)
	c, err := msrpwebrtc.NewConn(dc, cfg)
	return &peer{pc: pc, conn: c}, err
}

// describe adds the MSRP channel's a=dcmap and a=dcsa lines to a peer's
// SDP, with its URI, and returns the text and the URI.
func describe(t testing.TB, sdp string, setup msrp.SDPSetup) (string, msrp.URI) {
	d, err := msrp.ParseSDP([]byte(sdp))
	require.NoError(t, err)
	require.Len(t, d.Media, 1)
	m := d.Media[0]
	host := m.Address
	if host == "" || host == "0.0.0.0" {
		host = "127.0.0.1"
	}
	self := msrp.URI{UseTLS: true, Host: host, Port: m.Port, SessionID: msrp.NewSessionID(), Transport: "dc"}
	ch := &msrp.SDPDataChannel{StreamID: 0, Label: "chat", Subprotocol: "msrp",
		MSRP: &msrp.SDPMedia{Path: []msrp.URI{self}, AcceptTypes: []string{"*"}, Setup: setup}}
	m.SetDataChannels([]*msrp.SDPDataChannel{ch})
	return string(d.Marshal()), self
}

// connect runs offer and answer between a and b in memory, each with its
// MSRP channel described, and returns each end's view of the other's
// channel.
func connect(t testing.TB, a, b *peer) (aURI, bURI msrp.URI, aSeesB, bSeesA *msrp.SDPDataChannel) {
	offer, err := a.pc.CreateOffer(nil)
	require.NoError(t, err)
	done := pion.GatheringCompletePromise(a.pc)
	require.NoError(t, a.pc.SetLocalDescription(offer))
	<-done
	offerText, aURI := describe(t, a.pc.LocalDescription().SDP, msrp.SetupActive)
	require.NoError(t, b.pc.SetRemoteDescription(pion.SessionDescription{Type: pion.SDPTypeOffer, SDP: offerText}))
	answer, err := b.pc.CreateAnswer(nil)
	require.NoError(t, err)
	done = pion.GatheringCompletePromise(b.pc)
	require.NoError(t, b.pc.SetLocalDescription(answer))
	<-done
	answerText, bURI := describe(t, b.pc.LocalDescription().SDP, msrp.SetupPassive)
	require.NoError(t, a.pc.SetRemoteDescription(pion.SessionDescription{Type: pion.SDPTypeAnswer, SDP: answerText}))

	channel := func(text string) *msrp.SDPDataChannel {
		d, err := msrp.ParseSDP([]byte(text))
		require.NoError(t, err)
		ch, err := d.Media[0].MSRPChannel(0)
		require.NoError(t, err)
		return ch
	}
	return aURI, bURI, channel(answerText), channel(offerText)
}

// recorder keeps the raw messages of the traffic log.
type recorder struct {
	mu   sync.Mutex
	msgs [][]byte
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *recorder) WithGroup(string) slog.Handler            { return r }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	if rec.Message != "sent message" && rec.Message != "received message" {
		return nil
	}
	rec.Attrs(func(a slog.Attr) bool {
		if a.Key == "raw" {
			r.mu.Lock()
			r.msgs = append(r.msgs, []byte(a.Value.String()))
			r.mu.Unlock()
		}
		return true
	})
	return nil
}

func startSessions(t testing.TB, a, b *peer, log *msrp.Logger) (sa, sb *msrp.MSRPSession) {
	aURI, bURI, aSeesB, bSeesA := connect(t, a, b)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// RFC 8873 §5.2: the dcsa setup picks the end that sends the first SEND.
	require.Equal(t, msrp.SetupActive, bSeesA.MSRP.Setup)
	done := make(chan error, 1)
	go func() {
		var err error
		sb, err = msrpwebrtc.StartSession(ctx, b.conn, bURI, bSeesA.MSRP.Path, false, msrp.SessionConfig{})
		done <- err
	}()
	var err error
	sa, err = msrpwebrtc.StartSession(ctx, a.conn, aURI, aSeesB.MSRP.Path, true, msrp.SessionConfig{})
	require.NoError(t, err)
	require.NoError(t, <-done)
	if log != nil {
		sa.Transport().Logger = log
	}
	t.Cleanup(func() { sa.Close(); sb.Close() })
	return sa, sb
}

func TestTwoPionPeers(t *testing.T) {
	leakcheck.Check(t)
	a, err := newPeer(t, "msrp", msrpwebrtc.Config{})
	require.NoError(t, err)
	b, err := newPeer(t, "msrp", msrpwebrtc.Config{})
	require.NoError(t, err)
	rec := &recorder{}
	sa, sb := startSessions(t, a, b, &msrp.Logger{Slog: slog.New(rec), LogTraffic: true})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	require.NoError(t, sa.Send(ctx, "text/plain", []byte("hello over a data channel"), msrp.MessageOptions{}))
	m, err := sb.Receive(ctx)
	require.NoError(t, err)
	assert.Equal(t, "hello over a data channel", string(m.Data))
	require.NoError(t, sb.Send(ctx, "text/plain", []byte("and back"), msrp.MessageOptions{}))
	m, err = sa.Receive(ctx)
	require.NoError(t, err)
	assert.Equal(t, "and back", string(m.Data))

	file := make([]byte, 3<<20)
	rand.Read(file)
	require.NoError(t, sa.Send(ctx, "application/octet-stream", file, msrp.MessageOptions{}))
	m, err = sb.Receive(ctx)
	require.NoError(t, err)
	assert.Equal(t, sha256.Sum256(file), sha256.Sum256(m.Data))

	require.NoError(t, sa.Shutdown(ctx))
	<-sb.Done()
	assert.NoError(t, sb.Err())

	// Every message that went over the channel was one whole chunk, under
	// the peer's max-message-size.
	rec.mu.Lock()
	defer rec.mu.Unlock()
	require.NotEmpty(t, rec.msgs)
	for _, msg := range rec.msgs {
		var p msrp.Parser
		c, n, err := p.Feed(msg)
		require.NoError(t, err)
		require.NotNil(t, c, "%.80q", msg)
		assert.Equal(t, len(msg), n, "one chunk per message")
		assert.LessOrEqual(t, len(msg), msrpwebrtc.DefaultMaxMessageSize)
	}
	t.Logf("%d messages logged", len(rec.msgs))
}

func TestWrongSubprotocolIsNotMSRP(t *testing.T) {
	_, err := newPeer(t, "bfcp", msrpwebrtc.Config{})
	assert.ErrorIs(t, err, msrpwebrtc.ErrNotMSRP)
}

// A peer that reads nothing holds the sender by the buffered-amount
// bound: memory stays bounded, and the session ends on its timeout.
func TestPeerThatNeverReads(t *testing.T) {
	a, err := newPeer(t, "msrp", msrpwebrtc.Config{MaxBuffered: 256 << 10})
	require.NoError(t, err)
	b, err := newPeer(t, "msrp", msrpwebrtc.Config{ReadQueue: 1})
	require.NoError(t, err)
	aURI, bURI, aSeesB, bSeesA := connect(t, a, b)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	go func() { // b binds and then never reads again
		tb := msrp.NewMessageTransport(b.conn, bURI)
		tb.AcceptBinding(ctx, bSeesA.MSRP.Path)
	}()
	sa, err := msrpwebrtc.StartSession(ctx, a.conn, aURI, aSeesB.MSRP.Path, true, msrp.SessionConfig{ResponseTimeout: time.Second})
	require.NoError(t, err)
	defer sa.Close()
	big := bytes.Repeat([]byte("x"), 64<<20)
	m, err := sa.SendMessage(bytes.NewReader(big), int64(len(big)), "application/octet-stream", msrp.MessageOptions{})
	require.NoError(t, err)
	start := time.Now()
	err = m.Wait(ctx)
	require.Error(t, err, "the message cannot get through")
	<-sa.Done()
	assert.Error(t, sa.Err(), "the session ends on its response timeout")
	assert.Less(t, time.Since(start), 10*time.Second)
}

// A data channel message with half a chunk, or two, is refused with 400
// and the channel carries on, as over WebSocket.
func TestDataChannelFramingErrors(t *testing.T) {
	a, err := newPeer(t, "msrp", msrpwebrtc.Config{})
	require.NoError(t, err)
	b, err := newPeer(t, "msrp", msrpwebrtc.Config{})
	require.NoError(t, err)
	aURI, bURI, aSeesB, bSeesA := connect(t, a, b)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan *msrp.MSRPSession, 1)
	go func() {
		s, err := msrpwebrtc.StartSession(ctx, b.conn, bURI, bSeesA.MSRP.Path, false, msrp.SessionConfig{})
		assert.NoError(t, err)
		done <- s
	}()
	ta := msrp.NewMessageTransport(a.conn, aURI)
	require.NoError(t, ta.Bind(ctx, aSeesB.MSRP.Path))
	sb := <-done
	require.NotNil(t, sb)
	defer sb.Close()

	send := func(tid, body string) []byte {
		c := ta.MakeSendRequest("", []byte(body), 1, int64(len(body)))
		c.TransactionID = tid
		c.Headers.Set(msrp.HeaderContentType, "text/plain")
		raw, err := c.Encode(nil)
		require.NoError(t, err)
		return raw
	}
	answer := func() *msrp.Chunk {
		c, err := ta.ReadChunk(ctx)
		require.NoError(t, err)
		return c
	}
	half := send("half0001", "half a chunk")
	require.NoError(t, a.conn.WriteMessage(ctx, half[:len(half)/2]))
	r := answer()
	assert.Equal(t, [2]any{"half0001", 400}, [2]any{r.TransactionID, r.Code})
	require.NoError(t, a.conn.WriteMessage(ctx, append(send("twoa0001", "first"), send("twob0001", "second")...)))
	r1, r2 := answer(), answer()
	assert.Equal(t, [2]int{200, 400}, [2]int{r1.Code, r2.Code})
	require.NoError(t, a.conn.WriteMessage(ctx, send("good0001", "still here")))
	assert.Equal(t, 200, answer().Code)
	for _, want := range []string{"first", "still here"} {
		m, err := sb.Receive(ctx)
		require.NoError(t, err)
		assert.Equal(t, want, string(m.Data))
	}
}

// A message over half of MaxBuffered, behind a few bytes still queued,
// goes out once they are: OnBufferedAmountLow fires only as the amount
// falls past its threshold.
func TestLargeWriteBehindSmallOne(t *testing.T) {
	a, err := newPeer(t, "msrp", msrpwebrtc.Config{MaxBuffered: 64 << 10})
	require.NoError(t, err)
	b, err := newPeer(t, "msrp", msrpwebrtc.Config{})
	require.NoError(t, err)
	connect(t, a, b)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	go func() {
		for {
			if _, err := b.conn.ReadMessage(ctx); err != nil {
				return
			}
		}
	}()
	for range 20 { // some bytes queued, under the low mark
		require.NoError(t, a.conn.WriteMessage(ctx, make([]byte, 1<<10)))
	}
	start := time.Now()
	require.NoError(t, a.conn.WriteMessage(ctx, make([]byte, 60<<10)))
	assert.Less(t, time.Since(start), 2*time.Second)
}

// pion advertises a max-message-size of 1 GiB; chunks stay far smaller.
func TestChunkSizeIsCapped(t *testing.T) {
	assert.LessOrEqual(t, msrpwebrtc.ChunkSize(1073741823), 256<<10)
	assert.Equal(t, msrpwebrtc.DefaultMaxMessageSize-8<<10, msrpwebrtc.ChunkSize(0))
	assert.Equal(t, 600, msrpwebrtc.ChunkSize(1200), "half of a small message is left for the head")
}
