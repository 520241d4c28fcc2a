package msrp

import (
	"strings"
	"testing"

	pionsdp "github.com/pion/sdp/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// RFC 8873 §4.8's offer, unfolded, with the IPv6 host of its paths in
// brackets as RFC 3986 (and RFC 4975 §9) write it: the RFC leaves them out.
var rfc8873Offer = `v=0
o=- 1 1 IN IP6 2001:db8::3
s=-
t=0 0
m=application 54111 UDP/DTLS/SCTP webrtc-datachannel
c=IN IP6 2001:db8::3
a=max-message-size:100000
a=sctp-port:5000
a=setup:actpass
a=fingerprint:SHA-256 12:DF:3E:5D:49:6B:19:E5:7C:AB:4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B:19:E5:7C:AB:4A:AD
a=tls-id:4a756565cddef001be82
a=dcmap:0 label="chat";subprotocol="msrp"
a=dcsa:0 msrp-cema
a=dcsa:0 setup:active
a=dcsa:0 accept-types:message/cpim text/plain
a=dcsa:0 path:msrps://[2001:db8::3]:54111/si438dsaodes;dc
a=dcmap:2 label="file transfer";subprotocol="msrp"
a=dcsa:2 sendonly
a=dcsa:2 msrp-cema
a=dcsa:2 setup:active
a=dcsa:2 accept-types:message/cpim
a=dcsa:2 accept-wrapped-types:*
a=dcsa:2 path:msrps://[2001:db8::3]:54111/jshA7we;dc
a=dcsa:2 file-selector:name:"picture1.jpg" type:image/jpeg size:1463440 hash:sha-256:7C:DF:3E:5D:49:6B:19:E5:12:AB:4A:AD:4A:B1:3F:82:3E:3B:54:12:02:5D:18:DF:49:6B:19:E5:7C:AB:B9:AD
a=dcsa:2 file-transfer-id:rjEtHAcYVZ7xKwGYpGGwyn5gqsSaU7Ep
a=dcsa:2 file-disposition:attachment
a=dcsa:2 file-date:creation:"Tue, 11 Aug 2020 19:05:30 +0200"
a=dcsa:2 file-icon:cid:id2@bob.example.com
a=dcsa:2 file-range:1-1463440
`

func TestDataChannelSDP(t *testing.T) {
	d, err := ParseSDP(crlf(rfc8873Offer))
	require.NoError(t, err)
	require.Len(t, d.Media, 1)
	m := d.Media[0]
	assert.Equal(t, ProtoDataChannel, m.Proto)
	assert.Equal(t, 100000, m.MaxMessageSize())
	chans, err := m.DataChannels()
	require.NoError(t, err)
	require.Len(t, chans, 2)
	chat, file := chans[0], chans[1]
	assert.Equal(t, "chat", chat.Label)
	assert.True(t, chat.IsMSRP())
	assert.Equal(t, SetupActive, chat.MSRP.Setup)
	assert.True(t, chat.MSRP.CEMA)
	assert.Equal(t, "dc", chat.MSRP.Path[0].Transport)
	assert.True(t, chat.MSRP.Path[0].UseTLS)
	assert.Equal(t, []string{"message/cpim", "text/plain"}, chat.MSRP.AcceptTypes)
	assert.Equal(t, "file transfer", file.Label)
	assert.Equal(t, DirectionSendOnly, file.MSRP.Direction)
	assert.EqualValues(t, 1463440, file.MSRP.File.Size)
	assert.Equal(t, &FileRange{Start: 1, Stop: 1463440}, file.MSRP.FileRange)
	got, err := m.MSRPChannel(2)
	require.NoError(t, err)
	assert.Equal(t, "picture1.jpg", got.MSRP.File.Name)

	// Written back, it reads the same, and pion/sdp reads it.
	m.SetDataChannels(chans)
	out := d.Marshal()
	d2, err := ParseSDP(out)
	require.NoError(t, err)
	chans2, err := d2.Media[0].DataChannels()
	require.NoError(t, err)
	assert.Equal(t, chans, chans2)
	var p pionsdp.SessionDescription
	require.NoError(t, p.Unmarshal(out))
	dcmap, ok := p.MediaDescriptions[0].Attribute("dcmap")
	assert.True(t, ok)
	assert.Equal(t, `0 label="chat";subprotocol="msrp"`, dcmap)
}

func TestDataChannelSDPErrors(t *testing.T) {
	head := "v=0\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\n"
	msrp := `a=dcmap:0 label="chat";subprotocol="msrp"` + "\na=dcsa:0 setup:active\na=dcsa:0 msrp-cema\n"
	path := "a=dcsa:0 path:msrps://[::1]:9/s;dc\n"
	for _, tc := range []struct{ name, attrs, says string }{
		{"two dcmaps for a stream", msrp + path + `a=dcmap:0 label="x"` + "\n", "two a=dcmap lines for stream 0"},
		{"no dcsa path", msrp, "without a=dcsa path"},
		{"no dcsa setup", `a=dcmap:0 subprotocol="msrp"` + "\n" + path, "without a=dcsa setup"},
		{"unreliable MSRP", strings.Replace(msrp, `"msrp"`, `"msrp";max-retr=3`, 1) + path, "must be reliable"},
		{"both limits", `a=dcmap:1 max-retr=1;max-time=2` + "\n", "max-retr and max-time together"},
		{"dcsa without dcmap", msrp + path + "a=dcsa:4 setup:active\n", "stream 4, which no a=dcmap names"},
		{"bad stream id", "a=dcmap:x\n", "stream id"},
		{"bad label", "a=dcmap:2 label=chat\n", "not quoted"},
		{"bad dcsa value", msrp + path + "a=dcsa:0 setup:sometimes\n", "active, passive or actpass"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := ParseSDP([]byte(head + tc.attrs))
			require.NoError(t, err)
			_, err = d.Media[0].DataChannels()
			require.ErrorIs(t, err, ErrSDPDataChannel)
			assert.Contains(t, err.Error(), tc.says)
		})
	}
	t.Run("labels with odd bytes round-trip", func(t *testing.T) {
		ch := &SDPDataChannel{StreamID: 4, Label: "a \"b\" 100% ünï\t", Subprotocol: "x"}
		m := &SDPMedia{Media: "application"}
		m.SetDataChannels([]*SDPDataChannel{ch})
		got, err := m.DataChannels()
		require.NoError(t, err)
		assert.Equal(t, ch.Label, got[0].Label)
	})
}
