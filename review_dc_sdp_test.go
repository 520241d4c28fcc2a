package msrp

import (
	"testing"

	pionsdp "github.com/pion/sdp/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func reviewDCMedia(attrs string) *SDPMedia {
	d, err := ParseSDP([]byte("v=0\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\n" + attrs))
	if err != nil {
		panic(err)
	}
	return d.Media[0]
}

// A label may hold ';' (quoted-visible is %x26-7E): quoteDC writes it raw,
// and parseDCMap splits the options on every ';', quotes or not.
func TestReviewDCLabelWithSemicolonRoundTrips(t *testing.T) {
	for _, label := range []string{"a;b", "x;subprotocol=\"y\"", "k=v;"} {
		t.Run(label, func(t *testing.T) {
			ch := &SDPDataChannel{StreamID: 3, Label: label, Subprotocol: "bfcp"}
			m := &SDPMedia{Media: "application"}
			m.SetDataChannels([]*SDPDataChannel{ch})
			t.Logf("written: a=dcmap:%s", m.Attributes[0].Value)
			got, err := m.DataChannels()
			require.NoError(t, err)
			require.Len(t, got, 1)
			assert.Equal(t, label, got[0].Label)
			assert.Equal(t, "bfcp", got[0].Subprotocol)
		})
	}
}

// RFC 8873 §4.4 (and the doc comment of DataChannels) make msrp-cema
// mandatory in an MSRP channel's a=dcsa lines.
func TestReviewDCMissingCEMARefused(t *testing.T) {
	m := reviewDCMedia(`a=dcmap:0 label="chat";subprotocol="msrp"` + "\n" +
		"a=dcsa:0 setup:active\na=dcsa:0 accept-types:*\na=dcsa:0 path:msrps://[::1]:9/s;dc\n")
	chans, err := m.DataChannels()
	if err == nil {
		t.Errorf("an MSRP channel without a=dcsa msrp-cema was accepted (CEMA=%v)", chans[0].MSRP.CEMA)
	}
}

// Stream ids at the bounds; 6 digits refused.
func TestReviewDCStreamIDBounds(t *testing.T) {
	for _, tc := range []struct {
		v  string
		ok bool
		id int
	}{{"65535", true, 65535}, {"00007", true, 7}, {"65536", false, 0}, {"000001", false, 0}, {"-1", false, 0}, {"+1", false, 0}, {"", false, 0}} {
		m := reviewDCMedia("a=dcmap:" + tc.v + ` label="x"` + "\n")
		chans, err := m.DataChannels()
		if !tc.ok {
			assert.Error(t, err, tc.v)
			continue
		}
		require.NoError(t, err, tc.v)
		assert.Equal(t, tc.id, chans[0].StreamID)
	}
	// a duplicate written with leading zeros is still a duplicate
	_, err := reviewDCMedia("a=dcmap:7 label=\"a\"\na=dcmap:007 label=\"b\"\n").DataChannels()
	assert.ErrorIs(t, err, ErrSDPDataChannel)
}

// dcsa lines of a channel that is not MSRP's are kept and written back;
// unknown dcsa lines of an MSRP channel are kept too.
func TestReviewDCForeignDcsaKept(t *testing.T) {
	attrs := `a=dcmap:1 label="bfcp";subprotocol="bfcp";max-retr=3` + "\n" +
		"a=dcsa:1 floorctrl:c-s\na=dcsa:1 confid:4321\na=dcsa:1 sendonly\na=dcsa:1 x:a:b:c\n" +
		`a=dcmap:0 label="chat";subprotocol="MSRP"` + "\n" +
		"a=dcsa:0 msrp-cema\na=dcsa:0 setup:passive\na=dcsa:0 accept-types:*\na=dcsa:0 path:msrps://h.invalid:9/s;dc\na=dcsa:0 x-extra:1 2\na=dcsa:0 x-flag\n"
	m := reviewDCMedia(attrs)
	chans, err := m.DataChannels()
	require.NoError(t, err)
	require.Len(t, chans, 2)
	assert.Equal(t, []SDPAttribute{{"floorctrl", "c-s"}, {"confid", "4321"}, {"sendonly", ""}, {"x", "a:b:c"}}, chans[0].Attributes)
	assert.Equal(t, []SDPAttribute{{"x-extra", "1 2"}, {"x-flag", ""}}, chans[1].MSRP.Attributes)
	m.SetDataChannels(chans)
	again, err := m.DataChannels()
	require.NoError(t, err)
	assert.Equal(t, chans, again)

	// pion/sdp reads what SetDataChannels wrote
	d := &SDP{Lines: []SDPLine{{'v', "0"}, {'o', "- 1 1 IN IP4 127.0.0.1"}, {'s', "-"}, {'t', "0 0"}}, Media: []*SDPMedia{m}}
	var p pionsdp.SessionDescription
	require.NoError(t, p.Unmarshal(d.Marshal()))
	var dcsa []string
	for _, a := range p.MediaDescriptions[0].Attributes {
		if a.Key == "dcsa" {
			dcsa = append(dcsa, a.Value)
		}
	}
	assert.Contains(t, dcsa, "1 x:a:b:c")
	assert.Contains(t, dcsa, "0 path:msrps://h.invalid:9/s;dc")
}

// max-retr / max-time / ordered rules.
func TestReviewDCReliabilityRules(t *testing.T) {
	base := "a=dcsa:0 msrp-cema\na=dcsa:0 setup:active\na=dcsa:0 accept-types:*\na=dcsa:0 path:msrps://h.invalid:9/s;dc\n"
	for _, opt := range []string{"max-retr=0", "max-time=0", "ordered=false", "max-retr=4294967295"} {
		_, err := reviewDCMedia(`a=dcmap:0 subprotocol="msrp";` + opt + "\n" + base).DataChannels()
		assert.ErrorIs(t, err, ErrSDPDataChannel, opt)
	}
	_, err := reviewDCMedia("a=dcmap:0 max-retr=4294967296\n").DataChannels()
	assert.Error(t, err)
	_, err = reviewDCMedia(`a=dcmap:0 subprotocol="msrp";ordered=true` + "\n" + base).DataChannels()
	assert.NoError(t, err)
}

// A full pion offer with audio and a data channel, read and written back,
// is still taken by pion/sdp with its attributes in order.
func TestReviewDCFullOfferRoundTrip(t *testing.T) {
	offer := "v=0\r\no=- 4215775240449105457 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n" +
		"a=group:BUNDLE 0 1\r\na=extmap-allow-mixed\r\na=msid-semantic: WMS\r\n" +
		"m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\n" +
		"a=candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n" +
		"a=fingerprint:sha-256 12:DF:3E:5D:49:6B:19:E5:7C:AB:4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B:19:E5:7C:AB:4A:AD\r\n" +
		"a=setup:actpass\r\na=mid:0\r\na=sendrecv\r\na=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n" +
		"m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n" +
		"a=setup:actpass\r\na=mid:1\r\na=sctp-port:5000\r\na=max-message-size:262144\r\n" +
		"a=end-of-candidates\r\n"
	d, err := ParseSDP([]byte(offer))
	require.NoError(t, err)
	assert.Equal(t, 262144, d.Media[1].MaxMessageSize())
	out := string(d.Marshal())
	assert.Equal(t, offer, out)
}
