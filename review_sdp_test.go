package msrp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	pionsdp "github.com/pion/sdp/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rvMedia is a valid MSRP section with the given setup.
func rvMedia(host string, port int, setup SDPSetup) *SDPMedia {
	m := &SDPMedia{AcceptTypes: []string{"text/plain"}, Setup: setup}
	m.UsePath([]URI{{Host: host, Port: port, SessionID: "s" + fmt.Sprint(port), Transport: "tcp"}})
	return m
}

// Every a=setup combination, from both ends' views: the two views must
// agree (exactly one end active) or both fail; and RFC 4145 §4.1's defaults
// (absent = active in an offer, passive in an answer), which RFC 6135
// keeps, must hold: both ends active or both passive is a conflict.
func TestReviewSDPRoleMatrix(t *testing.T) {
	setups := []SDPSetup{SetupUnset, SetupActive, SetupPassive, SetupActPass}
	eff := func(s SDPSetup, isOffer bool) SDPSetup {
		if s == SetupUnset {
			if isOffer {
				return SetupActive
			}
			return SetupPassive
		}
		return s
	}
	for _, os := range setups {
		for _, as := range setups {
			name := fmt.Sprintf("offer=%q/answer=%q", os, as)
			offer, answer := rvMedia("192.0.2.1", 1000, os), rvMedia("192.0.2.2", 2000, as)
			fromOfferer, errO := NegotiateSDP(offer, answer, true)
			fromAnswerer, errA := NegotiateSDP(answer, offer, false)
			require.Equal(t, errO == nil, errA == nil, name)
			eo, ea := eff(os, true), eff(as, false)
			conflict := ea == SetupActPass || eo == ea ||
				(eo == SetupActive && ea == SetupActive) || (eo == SetupPassive && ea == SetupPassive)
			if errO == nil {
				assert.NotEqual(t, fromOfferer.Active, fromAnswerer.Active, "%s: exactly one end connects", name)
			}
			assert.Equal(t, conflict, errO != nil, "%s: RFC 4145 defaults say conflict=%v; got offerer err=%v", name, conflict, errO)
		}
	}
}

// AnswerSDP must not answer active to an offer without a=setup: such an
// offerer (RFC 4975 §5.4, RFC 4145 default) connects itself.
func TestReviewSDPAnswerActiveToLegacyOffer(t *testing.T) {
	offer := rvMedia("192.0.2.1", 1000, SetupUnset)
	ours := rvMedia("192.0.2.2", 2000, SetupActive)
	a, err := AnswerSDP(offer, ours)
	require.NoError(t, err)
	assert.NotEqual(t, SetupActive, a.Setup, "a legacy offerer is active; answering active makes both ends dial")
}

// Under CEMA the active end dials the peer's c= address. RFC 8866 lets c=
// be at session level only, as in every RFC 4975 example.
func TestReviewSDPCEMASessionLevelConnection(t *testing.T) {
	remoteSDP := "v=0\r\no=- 1 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\n" +
		"m=message 7777 TCP/MSRP *\r\na=accept-types:text/plain\r\na=msrp-cema\r\n" +
		"a=path:msrp://10.0.0.5:9999/abc;tcp\r\n"
	d, err := ParseSDP([]byte(remoteSDP))
	require.NoError(t, err)
	remote, err := d.MSRP()
	require.NoError(t, err)
	local := rvMedia("192.0.2.2", 2000, SetupUnset)
	local.CEMA = true
	n, err := NegotiateSDP(local, remote, true)
	require.NoError(t, err)
	require.True(t, n.CEMA)
	require.True(t, n.Active)
	var dialled string
	dial := n.cemaDial(func(_ context.Context, _, addr string) (net.Conn, error) {
		dialled = addr
		return nil, errors.New("no")
	})
	dial(context.Background(), "tcp", remote.Path[0].HostPort())
	assert.Equal(t, "198.51.100.7:7777", dialled, "CEMA must dial the session-level c= address and m= port")
}

// cemaDial with IPv6 on both sides, path written as an IPv6 literal.
func TestReviewSDPCEMAIPv6(t *testing.T) {
	remoteSDP := "v=0\r\no=- 1 1 IN IP6 2001:db8::7\r\ns=-\r\nt=0 0\r\n" +
		"m=message 7777 TCP/MSRP *\r\nc=IN IP6 2001:db8::7\r\na=accept-types:text/plain\r\na=msrp-cema\r\n" +
		"a=path:msrp://[2001:db8::5]:9999/abc;tcp\r\n"
	d, err := ParseSDP([]byte(remoteSDP))
	require.NoError(t, err)
	remote, err := d.MSRP()
	require.NoError(t, err)
	local := rvMedia("2001:db8::2", 2000, SetupUnset)
	local.CEMA = true
	n, err := NegotiateSDP(local, remote, true)
	require.NoError(t, err)
	var dialled string
	dial := n.cemaDial(func(_ context.Context, _, addr string) (net.Conn, error) {
		dialled = addr
		return nil, errors.New("no")
	})
	dial(context.Background(), "tcp", "[2001:db8::5]:9999")
	assert.Equal(t, "[2001:db8::7]:7777", dialled)
	// The o= and c= lines NewSDP/Marshal write for an IPv6 path parse in pion.
	out := NewSDP(1, 1, local).Marshal()
	assert.Contains(t, string(out), "c=IN IP6 2001:db8::2\r\n")
	var p pionsdp.SessionDescription
	assert.NoError(t, p.Unmarshal(out), "%s", out)
}

// RFC 8866 §5 orders session-level lines v o s i u e p c b t r z a; Marshal
// puts c= just before t=, so after a b= line.
func TestReviewSDPMarshalOrderWithBandwidth(t *testing.T) {
	in := "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nb=AS:64\r\nt=0 0\r\n" +
		"m=message 7394 TCP/MSRP *\r\na=accept-types:text/plain\r\na=path:msrp://192.0.2.1:7394/x;tcp\r\n"
	d, err := ParseSDP([]byte(in))
	require.NoError(t, err)
	out := d.Marshal()
	assert.Equal(t, in, string(out), "parse then marshal keeps the RFC 8866 order")
	var p pionsdp.SessionDescription
	assert.NoError(t, p.Unmarshal(out), "pion reads what Marshal writes:\n%s", out)
}

// c=IN IP6 with a host name comes back as IP4.
func TestReviewSDPIP6HostNameRoundTrip(t *testing.T) {
	in := "v=0\r\no=- 1 1 IN IP6 host6.example.com\r\ns=-\r\nc=IN IP6 host6.example.com\r\nt=0 0\r\n" +
		"m=message 7394 TCP/MSRP *\r\nc=IN IP6 host6.example.com\r\na=accept-types:text/plain\r\na=path:msrp://host6.example.com:7394/x;tcp\r\n"
	d, err := ParseSDP([]byte(in))
	require.NoError(t, err)
	assert.Equal(t, in, string(d.Marshal()))
}

// RFC 5547 §6: file-date is an RFC 5322 date-time, whose day is 1*2DIGIT
// and whose day of the week is optional.
func TestReviewSDPFileDateForms(t *testing.T) {
	for _, v := range []string{
		`creation:"Mon, 15 May 2006 15:01:31 +0300"`,
		`creation:"15 May 2006 15:01:31 +0300"`,
		`creation:"5 May 2006 15:01:31 +0300"`,
		`creation:"Fri, 5 May 2006 15:01:31 +0300"`,
		`modification:"Fri, 05 May 2006 15:01:31 +0300" read:"Sat, 06 May 2006 00:00:00 -0000"`,
	} {
		_, err := parseFileDates(v)
		assert.NoError(t, err, v)
	}
	for _, v := range []string{`creation:"x"`, `creation:"Mon, 15 May 2006 15:01:31 +0300" creation:"Mon, 15 May 2006 15:01:31 +0300"`, `bogus:"Mon, 15 May 2006 15:01:31 +0300"`, `creation:"Mon, 15 May 2006 15:01:31 +0300`} {
		_, err := parseFileDates(v)
		assert.Error(t, err, v)
	}
}

// File names with every awkward byte survive String and ParseFileSelector.
func TestReviewSDPFileSelectorNames(t *testing.T) {
	names := []string{
		`a"b`, "100%", "%41", "line\r\nbreak", "nul\x00byte", "tab\there", "  spaces  ", "ünïcødé 名前.txt",
		`x" hash:sha-1:00`, "emoji 😀", "semi;colon type:text/plain", "\x7f", `back\slash`, "trailing%",
	}
	for _, name := range names {
		f := &FileSelector{Name: name, Type: "text/plain", Size: 3}
		g, err := ParseFileSelector(f.String())
		if assert.NoError(t, err, "%q -> %s", name, f.String()) {
			assert.Equal(t, name, g.Name)
			assert.Equal(t, "text/plain", g.Type)
			assert.Equal(t, int64(3), g.Size)
		}
	}
	for _, bad := range []string{"name:\"a\x00\"", `name:""`, `name:"%ZZ"`, `name:"%4"`, "name:\"\xff\"", `name:"%FF"`,
		`size:-1`, `size:1x`, `hash:sha-1:AB`, `hash:md5:GG`, `name:"a" name:"b"`, `type:text`, `foo:bar`} {
		_, err := ParseFileSelector(bad)
		assert.Error(t, err, bad)
	}
	f := NewFileSelector("f", "text/plain", []byte("abc"))
	assert.True(t, f.Matches([]byte("abc")))
	assert.False(t, f.Matches([]byte("abd")))
	g, err := ParseFileSelector(strings.ToLower(f.String()))
	require.NoError(t, err)
	assert.True(t, g.Matches([]byte("abc")), "hash hex compared without regard to case")
}

// AnswerSDP's accept-types: wildcards, case, parameters.
func TestReviewSDPAcceptTypesIntersection(t *testing.T) {
	cases := []struct {
		ours, theirs, want []string
	}{
		{[]string{"*"}, []string{"text/plain", "image/*"}, []string{"text/plain", "image/*"}},
		{[]string{"text/*"}, []string{"*"}, []string{"text/*"}},
		{[]string{"text/plain"}, []string{"*"}, []string{"text/plain"}},
		{[]string{"text/*"}, []string{"text/plain", "image/png"}, []string{"text/plain"}},
		{[]string{"TEXT/PLAIN"}, []string{"text/plain"}, []string{"TEXT/PLAIN"}},
		{[]string{"image/png"}, []string{"text/*"}, nil},
	}
	for _, c := range cases {
		assert.Equal(t, c.want, intersectTypes(c.ours, c.theirs), "ours %q theirs %q", c.ours, c.theirs)
	}
	// A parameterised type: we take any text/plain, they take only utf-8.
	got := intersectTypes([]string{"text/plain"}, []string{"text/plain;charset=utf-8"})
	assert.NotEmpty(t, got, "text/plain and text/plain;charset=utf-8 have text/plain (utf-8) in common")
	assert.NotEmpty(t, intersectTypes([]string{"text/*"}, []string{"text/plain;charset=utf-8"}), "while text/* does match it")
	// ParseSDP accepts such an entry; the peer then must be able to send it.
	n := &SDPNegotiation{Local: rvMedia("192.0.2.1", 1, SetupUnset), Remote: rvMedia("192.0.2.2", 2, SetupUnset)}
	n.Remote.AcceptTypes = []string{"text/plain;charset=utf-8"}
	assert.True(t, n.PeerAccepts("text/plain;charset=utf-8"), "the peer listed exactly this type")
}

// The direction answered: RFC 3264 §6.1, a recvonly answerer offered
// recvonly answers inactive, not sendonly.
func TestReviewSDPAnswerDirection(t *testing.T) {
	for _, c := range []struct{ offer, ours, want SDPDirection }{
		{DirectionSendOnly, DirectionUnset, DirectionRecvOnly},
		{DirectionRecvOnly, DirectionUnset, DirectionSendOnly},
		{DirectionInactive, DirectionUnset, DirectionInactive},
		{DirectionRecvOnly, DirectionRecvOnly, DirectionInactive},
		{DirectionSendOnly, DirectionSendOnly, DirectionInactive},
	} {
		offer := rvMedia("192.0.2.1", 1000, SetupUnset)
		offer.Direction = c.offer
		ours := rvMedia("192.0.2.2", 2000, SetupUnset)
		ours.Direction = c.ours
		a, err := AnswerSDP(offer, ours)
		require.NoError(t, err)
		assert.Equal(t, c.want, a.Direction, "offer %s, ours %q", c.offer, c.ours)
		n, err := NegotiateSDP(a, offer, false)
		require.NoError(t, err)
		if c.ours == DirectionRecvOnly {
			assert.False(t, n.CanSend(), "we said recvonly")
		}
	}
}

// A hostile description: the size bound, many lines, long lines, no panic.
func TestReviewSDPHostile(t *testing.T) {
	_, err := ParseSDP(make([]byte, maxSDPSize+1))
	assert.ErrorIs(t, err, ErrSDPSyntax)
	var b strings.Builder
	b.WriteString("v=0\r\nm=message 1 TCP/MSRP *\r\n")
	for b.Len() < maxSDPSize-20 {
		b.WriteString("a=x\r\n")
	}
	start := time.Now()
	d, err := ParseSDP([]byte(b.String()))
	require.NoError(t, err)
	assert.Less(t, time.Since(start), 2*time.Second)
	_ = d.Marshal()
	long := "v=0\r\nm=message 1 TCP/MSRP *\r\na=path:msrp://" + strings.Repeat("a", maxSDPSize-100) + ":1/x;tcp\r\n"
	_, _ = ParseSDP([]byte(long))
	for _, s := range []string{"m=\r\n", "m=message\r\n", "m=message 99999999999999999999 TCP/MSRP *", "c=IN\r\n",
		"m=message 1 TCP/MSRP *\r\na=\r\n", "m=message 1 TCP/MSRP *\r\na=:x\r\n", "m=message 1 TCP/MSRP *\r\na=max-size:99999999999999999999999\r\n",
		"m=message 1 TCP/MSRP *\r\na=file-range:5-4\r\n", "m=message 1 TCP/MSRP *\r\na=file-range:0-4\r\n",
		"m=message 1 TCP/MSRP *\r\na=file-selector\r\n", "m=message 1 TCP/MSRP *\r\na=file-selector:\r\n", "=x", "\x00=x"} {
		d, err := ParseSDP([]byte(s))
		if err == nil {
			_ = d.Marshal()
			_, _ = d.MSRP()
		}
	}
}

// Rejected sections and several m= lines: MSRP takes the first live MSRP
// section.
func TestReviewSDPMultipleMedia(t *testing.T) {
	in := "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n" +
		"m=audio 49170 RTP/AVP 0\r\na=setup:active\r\na=path:garbage\r\n" +
		"m=message 0 TCP/MSRP *\r\na=accept-types:text/plain\r\na=path:msrp://192.0.2.1:1/rejected;tcp\r\n" +
		"m=message 7394 TCP/MSRP *\r\na=accept-types:text/plain\r\na=path:msrp://192.0.2.1:7394/live;tcp\r\n"
	d, err := ParseSDP([]byte(in))
	require.NoError(t, err)
	m, err := d.MSRP()
	require.NoError(t, err)
	assert.Equal(t, "live", m.Path[0].SessionID)
	var p pionsdp.SessionDescription
	assert.NoError(t, p.Unmarshal(d.Marshal()))
}

// SessionConfig end to end: 415 for a type outside our accept-types, 413
// over our max-size, exactly max-size taken.
func TestReviewSDPSessionConfigEndToEnd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	offer := rvMedia("127.0.0.1", 1, SetupUnset)
	offer.AcceptTypes = []string{"*"}
	ours := rvMedia("127.0.0.1", 2, SetupUnset)
	ours.AcceptTypes = []string{"text/plain"}
	ours.MaxSize = 1000
	answer, err := AnswerSDP(offer, ours)
	require.NoError(t, err)
	nB, err := NegotiateSDP(answer, offer, false)
	require.NoError(t, err)
	nA, err := NegotiateSDP(offer, answer, true)
	require.NoError(t, err)
	cfgA := nA.SessionConfig(SessionConfig{MessageConfig: MessageConfig{ChunkSize: 300}})
	cfgB := nB.SessionConfig(SessionConfig{})
	a, b := startPair(t, cfgA, cfgB)
	assert.False(t, nA.PeerAccepts("image/png"))
	var te *TransactionError
	err = a.Send(ctx, "image/png", []byte("png"), MessageOptions{})
	require.ErrorAs(t, err, &te)
	assert.Equal(t, 415, te.Code)
	assert.ErrorIs(t, a.Send(ctx, "text/plain", make([]byte, 1001), MessageOptions{}), ErrMessageTooLarge)
	require.NoError(t, a.Send(ctx, "text/plain", make([]byte, 1000), MessageOptions{}))
	m, err := b.Receive(ctx)
	require.NoError(t, err)
	assert.Len(t, m.Data, 1000)
	// The application's own bound survives a description without max-size.
	got := nA.SessionConfig(SessionConfig{MessageConfig: MessageConfig{MaxSize: 4096}})
	assert.Equal(t, int64(4096), got.MaxSize, "no a=max-size in our section: base.MaxSize should be kept, not reset to unlimited")
}

// MaxSize with only OnIncoming (no reassembly): the doc says every incoming
// message larger than ours is refused with 413, "wherever it goes".
func TestReviewMaxSizeWithOnIncomingOnly(t *testing.T) {
	rec := newRecorder()
	s, peer := sessionAndPeer(t, SessionConfig{OnIncoming: rec.onChunk, MessageConfig: MessageConfig{MaxSize: 1000}})
	_ = s
	c := peer.MakeSendRequest("", make([]byte, 100), 1, 5000)
	c.Headers.Set(HeaderContentType, "text/plain")
	c.ContFlag = FlagContinued
	c.Headers.Set(HeaderByteRange, "1-100/5000")
	resp := peerSendExpect(t, peer, c)
	require.NotNil(t, resp)
	assert.Equal(t, 413, resp.Code, "a message announced at 5000 bytes against max-size 1000")
}

// Exact limit, Byte-Range totals that lie, unknown sizes, out of order.
func TestReviewMaxSizeByteRanges(t *testing.T) {
	const max = 1000
	send := func(t *testing.T, peer *MSRPTransport, mid, br string, n int, flag byte) int {
		c := peer.MakeSendRequest("", make([]byte, n), 1, 0)
		c.Headers.Set(HeaderContentType, "text/plain")
		c.Headers.Set(HeaderMessageID, mid)
		c.Headers.Set(HeaderByteRange, br)
		c.ContFlag = flag
		resp := peerSendExpect(t, peer, c)
		if resp == nil {
			return 0
		}
		return resp.Code
	}
	cfg := SessionConfig{MessageConfig: MessageConfig{MaxSize: max, MessageWriter: func(*MSRPSession, *IncomingMessage) io.Writer { return io.Discard }}}
	t.Run("exact", func(t *testing.T) {
		_, peer := sessionAndPeer(t, cfg)
		assert.Equal(t, 200, send(t, peer, "mid00001", "1-1000/1000", 1000, FlagEnd))
		assert.Equal(t, 200, send(t, peer, "mid00002", "1-500/*", 500, FlagContinued))
		assert.Equal(t, 200, send(t, peer, "mid00002", "501-1000/*", 500, FlagEnd))
	})
	t.Run("total lies small", func(t *testing.T) {
		_, peer := sessionAndPeer(t, cfg)
		assert.Equal(t, 200, send(t, peer, "mid00001", "1-500/500", 500, FlagContinued))
		assert.NotEqual(t, 200, send(t, peer, "mid00001", "501-1500/500", 1000, FlagEnd))
	})
	t.Run("unknown grows", func(t *testing.T) {
		_, peer := sessionAndPeer(t, cfg)
		assert.Equal(t, 200, send(t, peer, "mid00001", "1-600/*", 600, FlagContinued))
		assert.Equal(t, 413, send(t, peer, "mid00001", "601-1200/*", 600, FlagContinued))
		assert.Equal(t, 413, send(t, peer, "mid00001", "1201-1300/*", 100, FlagEnd), "later chunks of a refused message")
	})
	t.Run("out of order beyond", func(t *testing.T) {
		_, peer := sessionAndPeer(t, cfg)
		assert.Equal(t, 413, send(t, peer, "mid00001", "1001-1001/*", 1, FlagContinued))
	})
	t.Run("no byte-range", func(t *testing.T) {
		_, peer := sessionAndPeer(t, cfg)
		c := peer.MakeSendRequest("", make([]byte, 1500), 1, 0)
		c.Headers.Set(HeaderContentType, "text/plain")
		c.Headers.Del(HeaderByteRange)
		resp := peerSendExpect(t, peer, c)
		require.NotNil(t, resp)
		assert.Equal(t, 413, resp.Code)
	})
}

// After a 413 the sender stops sending the message.
func TestReviewMaxSizeSenderStops(t *testing.T) {
	s, peer := pipeSessionAndPeer(t, SessionConfig{MessageConfig: MessageConfig{ChunkSize: 100}})
	count := answerEvery(peer, 413)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	body := make([]byte, 100*1000)
	err := s.Send(ctx, "text/plain", body, MessageOptions{})
	var te *TransactionError
	require.ErrorAs(t, err, &te)
	assert.Equal(t, 413, te.Code)
	time.Sleep(200 * time.Millisecond)
	assert.Less(t, int(count.Load()), 100, "the sender went on after 413: %d chunks", count.Load())
}
