package msrp

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	pionsdp "github.com/pion/sdp/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The SDP examples of the RFCs, verbatim but for line ends.
var (
	rfc4975Fig7 = `v=0
o=alice 2890844526 2890844527 IN IP4 alice.example.com
s= -
c=IN IP4 alice.example.com
t=0 0
m=message 7394 TCP/MSRP *
a=accept-types:text/plain
a=path:msrp://alice.example.com:7394/2s93i9ek2a;tcp
`
	rfc4975Fig9 = `v=0
o=usera 2890844526 2890844527 IN IP4 alice.example.com
s= -
c=IN IP4 alice.example.com
t=0 0
m=message 7394 TCP/MSRP *
a=accept-types:message/cpim text/plain text/html
a=path:msrp://alice.example.com:7394/2s93i93idj;tcp
`
	rfc4975Fig10 = `v=0
o=userb 2890844530 2890844532 IN IP4 bob.example.com
s= -
c=IN IP4 bob.example.com
t=0 0
m=message 8493 TCP/MSRP *
a=accept-types:message/cpim text/plain
a=path:msrp://bob.example.com:8493/si438dsaodes;tcp
`
	// RFC 4975 §14.4, Figure 19, within a session of its own.
	rfc4975Fig19 = `v=0
o=- 1 1 IN IP4 atlanta.example.com
s=-
c=IN IP4 atlanta.example.com
t=0 0
m=message 7654 TCP/TLS/MSRP *
a=accept-types:text/plain
a=path:msrps://atlanta.example.com:7654/jshA7weso3ks;tcp
a=fingerprint:SHA-1 4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B:19:E5:7C:AB
`
	rfc5547Example = `v=0
o=alice 2890844526 2890844526 IN IP4 host.atlanta.example.com
s=
c=IN IP4 host.atlanta.example.com
t=0 0
m=message 7654 TCP/MSRP *
i=This is my latest picture
a=sendonly
a=accept-types:message/cpim
a=accept-wrapped-types:*
a=path:msrp://atlanta.example.com:7654/jshA7we;tcp
a=file-selector:name:"My cool picture.jpg" type:image/jpeg size:32349 hash:sha-1:72:24:5F:E8:65:3D:DA:F3:71:36:2F:86:D4:71:91:3E:E4:A2:CE:2E
a=file-transfer-id:vBnG916bdberum2fFEABR1FR3ExZMUrd
a=file-disposition:attachment
a=file-date:creation:"Mon, 15 May 2006 15:01:31 +0300"
a=file-icon:cid:id2@alicepc.example.com
a=file-range:1-32349
`
)

func mustMSRP(t *testing.T, body []byte) *SDPMedia {
	t.Helper()
	d, err := ParseSDP(body)
	require.NoError(t, err)
	m, err := d.MSRP()
	require.NoError(t, err)
	return m
}

func TestParseSDPRFCExamples(t *testing.T) {
	m := mustMSRP(t, crlf(rfc4975Fig7))
	assert.Equal(t, 7394, m.Port)
	assert.Equal(t, ProtoMSRP, m.Proto)
	assert.Equal(t, []string{"*"}, m.Formats)
	assert.Equal(t, []string{"text/plain"}, m.AcceptTypes)
	assert.Equal(t, "msrp://alice.example.com:7394/2s93i9ek2a;tcp", FormatPath(m.Path))

	offer, answer := mustMSRP(t, []byte(rfc4975Fig9)), mustMSRP(t, crlf(rfc4975Fig10)) // LF alone, and CRLF
	assert.Equal(t, []string{"message/cpim", "text/plain", "text/html"}, offer.AcceptTypes)
	assert.Equal(t, "si438dsaodes", answer.Path[0].SessionID)

	tls := mustMSRP(t, crlf(rfc4975Fig19))
	assert.Equal(t, ProtoMSRPTLS, tls.Proto)
	assert.Equal(t, []string{"SHA-1 4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B:19:E5:7C:AB"}, tls.Fingerprints)
	assert.True(t, tls.Path[0].UseTLS)

	f := mustMSRP(t, crlf(rfc5547Example))
	assert.Equal(t, DirectionSendOnly, f.Direction)
	assert.Equal(t, []string{"*"}, f.AcceptWrappedTypes)
	require.NotNil(t, f.File)
	assert.Equal(t, "My cool picture.jpg", f.File.Name)
	assert.Equal(t, "image/jpeg", f.File.Type)
	assert.EqualValues(t, 32349, f.File.Size)
	assert.Equal(t, "sha-1:72:24:5F:E8:65:3D:DA:F3:71:36:2F:86:D4:71:91:3E:E4:A2:CE:2E", f.File.Hash)
	assert.Equal(t, "vBnG916bdberum2fFEABR1FR3ExZMUrd", f.FileTransferID)
	assert.Equal(t, "attachment", f.FileDisposition)
	assert.Equal(t, time.Date(2006, 5, 15, 12, 1, 31, 0, time.UTC), f.FileDate.Creation.UTC())
	assert.Equal(t, "cid:id2@alicepc.example.com", f.FileIcon)
	assert.Equal(t, &FileRange{Start: 1, Stop: 32349}, f.FileRange)
	assert.Equal(t, []SDPLine{{'i', "This is my latest picture"}}, f.Lines)
}

// What Marshal writes parses back to the same, with this parser and with
// pion/sdp, an independent one; and what pion writes, this parser reads.
func TestSDPRoundTrip(t *testing.T) {
	for name, example := range map[string]string{
		"4975 fig 7": rfc4975Fig7, "4975 fig 9": rfc4975Fig9, "4975 fig 19": rfc4975Fig19, "5547": rfc5547Example,
	} {
		t.Run(name, func(t *testing.T) {
			d, err := ParseSDP(crlf(example))
			require.NoError(t, err)
			out := d.Marshal()
			again, err := ParseSDP(out)
			require.NoError(t, err)
			assert.Equal(t, d, again)
			assert.Equal(t, string(out), string(again.Marshal()))

			var p pionsdp.SessionDescription
			require.NoError(t, p.Unmarshal(out), "pion reads what we write:\n%s", out)
			require.Len(t, p.MediaDescriptions, 1)
			pm := p.MediaDescriptions[0]
			m, _ := d.MSRP()
			assert.Equal(t, "message", pm.MediaName.Media)
			assert.Equal(t, m.Port, pm.MediaName.Port.Value)
			assert.Equal(t, strings.Split(m.Proto, "/"), pm.MediaName.Protos)
			path, ok := pm.Attribute("path")
			assert.True(t, ok)
			assert.Equal(t, FormatPath(m.Path), path)
			types, _ := pm.Attribute("accept-types")
			assert.Equal(t, strings.Join(m.AcceptTypes, " "), types)

			back, err := p.Marshal()
			require.NoError(t, err)
			fromPion, err := ParseSDP(back)
			require.NoError(t, err)
			pm2, err := fromPion.MSRP()
			require.NoError(t, err)
			assert.Equal(t, m, pm2)
		})
	}
}

func TestParseSDPErrors(t *testing.T) {
	base := strings.TrimSuffix(rfc4975Fig7, "a=path:msrp://alice.example.com:7394/2s93i9ek2a;tcp\n")
	for _, tc := range []struct {
		name, body string
		want       error
		says       string
	}{
		{"no equals", "v=0\nthis is not SDP\n", ErrSDPSyntax, "line 2"},
		{"space before equals", "v =0\n", ErrSDPSyntax, "line 1"},
		{"bad m= port", "v=0\nm=message port TCP/MSRP *\n", ErrSDPSyntax, "bad port"},
		{"bad c=", "v=0\nc=IN IP9 x\n", ErrSDPSyntax, "IN IP4|IP6"},
		{"bad path", base + "a=path:http://x\n", ErrSDPBadAttribute, "a=path"},
		{"bad setup", base + "a=setup:sometimes\n", ErrSDPBadAttribute, "active, passive or actpass"},
		{"bad max-size", base + "a=max-size:-1\n", ErrSDPBadAttribute, "octets"},
		{"huge max-size", base + "a=max-size:99999999999999999999\n", ErrSDPMaxSizeTooLong, "max-size"},
		{"bad accept-types", base + "a=accept-types:text\n", ErrSDPBadAttribute, "not a media type"},
		{"bad fingerprint", base + "a=fingerprint:sha-256 XYZ\n", ErrSDPBadAttribute, "fingerprint"},
		{"selector without name quote", base + "a=file-selector:name:photo.jpg\n", ErrSDPBadFileSelect, "quoted"},
		{"selector with an empty name", base + "a=file-selector:name:\"\"\n", ErrSDPBadFileSelect, "empty name"},
		{"selector with a bad hash", base + "a=file-selector:name:\"a\" hash:sha-1:72:24\n", ErrSDPBadFileSelect, "20 octets"},
		{"selector with bad hex", base + "a=file-selector:hash:sha-1:ZZ\n", ErrSDPBadFileSelect, "hex pairs"},
		{"selector twice named", base + "a=file-selector:name:\"a\" name:\"b\"\n", ErrSDPBadFileSelect, "two name"},
		{"unknown selector", base + "a=file-selector:colour:red\n", ErrSDPBadFileSelect, "unknown selector"},
		{"bad file-range", base + "a=file-range:5-2\n", ErrSDPBadAttribute, "before the start"},
		{"bad file-date", base + "a=file-date:creation:\"yesterday\"\n", ErrSDPBadAttribute, "RFC 5322"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseSDP([]byte(tc.body))
			require.ErrorIs(t, err, tc.want)
			assert.Contains(t, err.Error(), tc.says)
		})
	}
	t.Run("missing MSRP attributes", func(t *testing.T) {
		d, err := ParseSDP([]byte(base))
		require.NoError(t, err)
		_, err = d.MSRP()
		assert.ErrorIs(t, err, ErrSDPNoPath)
		d, err = ParseSDP([]byte(strings.Replace(rfc4975Fig7, "a=accept-types:text/plain\n", "", 1)))
		require.NoError(t, err)
		_, err = d.MSRP()
		assert.ErrorIs(t, err, ErrSDPNoAcceptTypes)
		d, err = ParseSDP([]byte("v=0\nm=audio 49170 RTP/AVP 0\n"))
		require.NoError(t, err)
		_, err = d.MSRP()
		assert.ErrorIs(t, err, ErrSDPNoMSRP)
	})
	t.Run("unknown attributes are kept", func(t *testing.T) {
		m := mustMSRP(t, []byte(rfc4975Fig7+"a=x-custom:1 2\na=x-flag\na=setup:holdconn\n"))
		assert.Equal(t, []SDPAttribute{{"x-custom", "1 2"}, {"x-flag", ""}}, m.Attributes)
		assert.Equal(t, SetupUnset, m.Setup, "holdconn reads as absent (RFC 6135 §4.2.1)")
		d, _ := ParseSDP([]byte(rfc4975Fig7 + "a=x-custom:1 2\na=x-flag\n"))
		assert.Contains(t, string(d.Marshal()), "a=x-custom:1 2\r\na=x-flag\r\n")
	})
}

func TestFileSelector(t *testing.T) {
	data := []byte("the file's contents")
	f := NewFileSelector(`a "quoted" 100% name.txt`, "text/plain", data)
	v := f.String()
	assert.Contains(t, v, `name:"a %22quoted%22 100%25 name.txt"`)
	back, err := ParseFileSelector(v)
	require.NoError(t, err)
	assert.Equal(t, f, back)
	assert.True(t, back.Matches(data))
	assert.False(t, back.Matches([]byte("the file's contentz")))
	assert.False(t, back.Matches(data[:5]))

	two, err := ParseFileSelector("hash:sha-1:" + strings.TrimPrefix(f.Hash, "sha-1:") + " hash:sha-256:AB:CD")
	require.NoError(t, err)
	assert.Len(t, two.Hashes, 2)
	_, err = ParseFileSelector(`name:"%ZZ"`)
	assert.ErrorIs(t, err, ErrSDPBadFileSelect)
	_, err = ParseFileSelector(`name:"%FF"`)
	assert.ErrorContains(t, err, "not UTF-8")
}

func TestAnswerSDP(t *testing.T) {
	offer := mustMSRP(t, []byte(rfc4975Fig9))
	ours := &SDPMedia{AcceptTypes: []string{"text/*", "image/png"}, MaxSize: 1 << 20}
	ours.UsePath([]URI{{Host: "bob.example.com", Port: 8493, SessionID: "s1", Transport: "tcp"}})
	a, err := AnswerSDP(offer, ours)
	require.NoError(t, err)
	assert.Equal(t, []string{"text/plain", "text/html"}, a.AcceptTypes, "our wildcard narrowed to what the offer takes")
	assert.Equal(t, SetupPassive, a.Setup, "to an offer without a=setup, passive: the offerer connects")
	assert.EqualValues(t, 1<<20, a.MaxSize)

	_, err = AnswerSDP(offer, &SDPMedia{AcceptTypes: []string{"image/png"}, Path: ours.Path})
	assert.ErrorIs(t, err, ErrSDPNoCommonType)

	star := &SDPMedia{AcceptTypes: []string{"*"}, Path: ours.Path, CEMA: true}
	for _, tc := range []struct {
		offer, want SDPSetup
		ours        SDPSetup
	}{
		{SetupActive, SetupPassive, SetupUnset},
		{SetupPassive, SetupActive, SetupUnset},
		{SetupActPass, SetupPassive, SetupUnset},
		{SetupActPass, SetupActive, SetupActive},
	} {
		o := *offer
		o.Setup = tc.offer
		s := *star
		s.Setup = tc.ours
		a, err := AnswerSDP(&o, &s)
		require.NoError(t, err)
		assert.Equal(t, tc.want, a.Setup, "offer %s, ours %s", tc.offer, tc.ours)
		assert.Equal(t, offer.AcceptTypes, a.AcceptTypes, "* takes the offer's types")
		assert.False(t, a.CEMA, "no CEMA unless the offer has it")
	}

	push := mustMSRP(t, []byte(rfc5547Example))
	push.CEMA = true
	a, err = AnswerSDP(push, star)
	require.NoError(t, err)
	assert.True(t, a.CEMA)
	assert.Equal(t, DirectionRecvOnly, a.Direction)
	assert.Equal(t, push.File, a.File)
	assert.Equal(t, push.FileTransferID, a.FileTransferID)
	assert.Empty(t, a.FileIcon+a.FileDisposition, "RFC 5547 §8.3.1: the answer adds no icon or disposition")
	assert.True(t, a.FileDate.Creation.IsZero())
}

func TestNegotiateSDP(t *testing.T) {
	mk := func(setup SDPSetup) *SDPMedia {
		return &SDPMedia{Media: "message", Proto: ProtoMSRP, Port: 1, AcceptTypes: []string{"*"}, Setup: setup,
			Path: []URI{{Host: "h", Port: 1, SessionID: "s", Transport: "tcp"}}}
	}
	for _, tc := range []struct {
		offer, answer  SDPSetup
		offererActive  bool
		conflict       bool
		name           string
		offerIsPassive bool
	}{
		{name: "neither says: the offerer connects (RFC 4975 §5.4)", offererActive: true},
		{name: "actpass, passive", offer: SetupActPass, answer: SetupPassive, offererActive: true},
		{name: "actpass, active", offer: SetupActPass, answer: SetupActive},
		{name: "active, passive", offer: SetupActive, answer: SetupPassive, offererActive: true},
		{name: "passive, active", offer: SetupPassive, answer: SetupActive},
		{name: "active, unset", offer: SetupActive, offererActive: true},
		{name: "active, active", offer: SetupActive, answer: SetupActive, conflict: true},
		{name: "passive, passive", offer: SetupPassive, answer: SetupPassive, conflict: true},
		{name: "actpass in an answer", offer: SetupActPass, answer: SetupActPass, conflict: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			offer, answer := mk(tc.offer), mk(tc.answer)
			atOfferer, err := NegotiateSDP(offer, answer, true)
			atAnswerer, err2 := NegotiateSDP(answer, offer, false)
			if tc.conflict {
				assert.ErrorIs(t, err, ErrSDPSetupConflict)
				assert.ErrorIs(t, err2, ErrSDPSetupConflict)
				return
			}
			require.NoError(t, err)
			require.NoError(t, err2)
			assert.Equal(t, tc.offererActive, atOfferer.Active)
			assert.Equal(t, !tc.offererActive, atAnswerer.Active, "exactly one end connects")
			_, isConnector := atOfferer.Connector(nil, ConnectConfig{}).(*ConnectorDirect)
			assert.Equal(t, tc.offererActive, isConnector)
		})
	}
}

func TestSDPNegotiationSettings(t *testing.T) {
	local := &SDPMedia{AcceptTypes: []string{"text/plain"}, MaxSize: 1000, CEMA: true, Direction: DirectionSendOnly}
	local.UsePath([]URI{{Host: "10.0.0.1", Port: 2855, SessionID: "a", Transport: "tcp"}})
	remote := &SDPMedia{AcceptTypes: []string{"message/cpim"}, MaxSize: 2000, CEMA: true, Direction: DirectionRecvOnly}
	remote.UsePath([]URI{{Host: "192.0.2.7", Port: 2856, SessionID: "b", Transport: "tcp"}})
	remote.Address, remote.Port = "127.0.0.1", 7777 // an ALG rewrote c= and m=
	n, err := NegotiateSDP(local, remote, true)
	require.NoError(t, err)
	assert.True(t, n.Active && n.CEMA)
	assert.True(t, n.CanSend())
	assert.False(t, n.CanReceive())
	assert.True(t, n.PeerAccepts("message/cpim"))
	assert.False(t, n.PeerAccepts("text/plain"))
	cfg := n.SessionConfig(SessionConfig{KeepaliveInterval: -1})
	assert.Equal(t, []string{"text/plain"}, cfg.AcceptTypes)
	assert.EqualValues(t, 1000, cfg.MaxSize)
	assert.EqualValues(t, 2000, cfg.PeerMaxSize)
	assert.Equal(t, time.Duration(-1), cfg.KeepaliveInterval, "the rest of base is kept")

	c := n.Connector(nil, ConnectConfig{Dial: func(_ context.Context, _, addr string) (net.Conn, error) {
		return nil, errors.New("dialled " + addr)
	}}).(*ConnectorDirect)
	assert.True(t, c.UseSessmatch, "CEMA matches paths by session id")
	_, err = c.Dial(context.Background(), "tcp", "192.0.2.7:2856")
	assert.EqualError(t, err, "dialled 127.0.0.1:7777", "under CEMA the active end dials c= and m=")
}

func TestSDPFingerprintChecks(t *testing.T) {
	remote := mustMSRP(t, crlf(rfc4975Fig19))
	local := &SDPMedia{AcceptTypes: []string{"*"}, Setup: SetupPassive}
	local.UsePath([]URI{{UseTLS: true, Host: "b", Port: 1, SessionID: "s", Transport: "tcp"}})
	n, err := NegotiateSDP(local, remote, false)
	require.NoError(t, err)
	cfg, err := n.TLSConfig(nil)
	require.NoError(t, err)
	assert.True(t, cfg.InsecureSkipVerify)
	assert.NotNil(t, cfg.VerifyConnection)
}

// An offer and an answer carried as text, then the session each end
// starts from the negotiation: the offerer connects, the answerer accepts,
// and max-size holds.
func TestSDPOfferAnswerSession(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// Alice offers; her path comes from an acceptor or connector she makes
	// once she knows her role, so she offers a connector's (the offerer
	// connects unless the answer says otherwise).
	aliceConn := &ConnectorDirect{}
	alicePath, err := aliceConn.Prepare(ctx, URI{Host: "127.0.0.1"})
	require.NoError(t, err)
	aliceMedia := &SDPMedia{AcceptTypes: []string{"text/plain"}, MaxSize: 100, Setup: SetupActive}
	aliceMedia.UsePath(alicePath)
	offer := NewSDP(1, 1, aliceMedia).Marshal()

	// Bob answers, passive: he prepares an acceptor.
	remoteOffer, err := ParseSDP(offer)
	require.NoError(t, err)
	bobView, err := remoteOffer.MSRP()
	require.NoError(t, err)
	bobAcc := GetAcceptor(nil, ConnectConfig{})
	bobPath, err := bobAcc.Prepare(ctx, URI{Host: "127.0.0.1"})
	require.NoError(t, err)
	bobMedia := &SDPMedia{AcceptTypes: []string{"text/*"}, MaxSize: 50}
	bobMedia.UsePath(bobPath)
	answerMedia, err := AnswerSDP(bobView, bobMedia)
	require.NoError(t, err)
	answer := NewSDP(2, 1, answerMedia).Marshal()
	bobNeg, err := NegotiateSDP(answerMedia, bobView, false)
	require.NoError(t, err)
	require.False(t, bobNeg.Active)

	got, err := ParseSDP(answer)
	require.NoError(t, err)
	aliceView, err := got.MSRP()
	require.NoError(t, err)
	aliceNeg, err := NegotiateSDP(aliceMedia, aliceView, true)
	require.NoError(t, err)
	require.True(t, aliceNeg.Active)

	done := make(chan *MSRPSession, 1)
	go func() {
		s, err := StartSession(ctx, bobAcc, bobNeg.RemotePath(), bobNeg.SessionConfig(SessionConfig{}))
		assert.NoError(t, err)
		done <- s
	}()
	alice, err := StartSession(ctx, aliceConn, aliceNeg.RemotePath(), aliceNeg.SessionConfig(SessionConfig{}))
	require.NoError(t, err)
	defer alice.Close()
	bob := <-done
	require.NotNil(t, bob)
	defer bob.Close()

	require.NoError(t, alice.Send(ctx, "text/plain", []byte("hello"), MessageOptions{}))
	m, err := bob.Receive(ctx)
	require.NoError(t, err)
	assert.Equal(t, "hello", string(m.Data))
	assert.ErrorIs(t, alice.Send(ctx, "text/plain", make([]byte, 60), MessageOptions{}), ErrMessageTooLarge, "Bob's max-size is 50")
	require.NoError(t, bob.Send(ctx, "text/plain", make([]byte, 60), MessageOptions{}), "Alice takes 100")
}

func FuzzParseSDP(f *testing.F) {
	for _, s := range []string{rfc4975Fig7, rfc4975Fig9, rfc4975Fig19, rfc5547Example} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseSDP([]byte(s))
		if err != nil {
			return
		}
		out := d.Marshal()
		again, err := ParseSDP(out)
		if err != nil {
			t.Fatalf("%q marshals as %q, which does not parse: %v", s, out, err)
		}
		if out2 := again.Marshal(); string(out2) != string(out) {
			t.Fatalf("not stable:\n%q\n%q", out, out2)
		}
	})
}

// An end that offers actpass prepares before it knows its role;
// SDPNegotiation.Complete completes it in the role the answer gives.
func TestSDPCompleteInTheNegotiatedRole(t *testing.T) {
	for _, bobSetup := range []SDPSetup{SetupActive, SetupPassive} {
		t.Run("bob "+string(bobSetup), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			alice := &AcceptorDirect{} // actpass: reachable, so it listens
			alicePath, err := alice.Prepare(ctx, URI{Host: "127.0.0.1"})
			require.NoError(t, err)
			offer := &SDPMedia{AcceptTypes: []string{"text/plain"}, Setup: SetupActPass}
			offer.UsePath(alicePath)

			var bob Connector = &ConnectorDirect{}
			if bobSetup == SetupPassive {
				bob = &AcceptorDirect{}
			}
			defer bob.Cleanup()
			bobPath, err := bob.Prepare(ctx, URI{Host: "127.0.0.1"})
			require.NoError(t, err)
			ours := &SDPMedia{AcceptTypes: []string{"text/plain"}, Setup: bobSetup}
			ours.UsePath(bobPath)
			answer, err := AnswerSDP(offer, ours)
			require.NoError(t, err)
			bobNeg, err := NegotiateSDP(answer, offer, false)
			require.NoError(t, err)
			aliceNeg, err := NegotiateSDP(offer, answer, true)
			require.NoError(t, err)
			require.Equal(t, bobSetup == SetupPassive, aliceNeg.Active)

			done := make(chan *MSRPTransport, 1)
			go func() {
				tr, err := bobNeg.Complete(ctx, bob)
				assert.NoError(t, err)
				done <- tr
			}()
			ta, err := aliceNeg.Complete(ctx, alice)
			require.NoError(t, err)
			tb := <-done
			require.NotNil(t, tb)
			a := NewMSRPSession(ta, SessionConfig{})
			b := NewMSRPSession(tb, SessionConfig{})
			defer a.Close()
			defer b.Close()
			require.NoError(t, a.Send(ctx, "text/plain", []byte("hi"), MessageOptions{}))
			m, err := b.Receive(ctx)
			require.NoError(t, err)
			assert.Equal(t, "hi", string(m.Data))
			assert.Equal(t, alicePath[0].HostPort(), ta.LocalURI().HostPort(), "Alice is who she offered")
		})
	}
}
