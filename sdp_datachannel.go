package msrp

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// ProtoDataChannel is the m= protocol of WebRTC data channels (RFC 8841),
// whose format is "webrtc-datachannel".
const ProtoDataChannel = "UDP/DTLS/SCTP"

// SDPDataChannel is one data channel negotiated in SDP (RFC 8864): its
// a=dcmap line and, for an MSRP channel (RFC 8873), the MSRP attributes of
// its a=dcsa lines, decoded as a media section's.
type SDPDataChannel struct {
	StreamID    int
	Label       string
	Subprotocol string // "msrp" for MSRP
	Unordered   bool   // a=dcmap says ordered=false; MSRP channels are ordered
	MaxRetr     *int64 // partial reliability, in retransmissions; nil when absent
	MaxTime     *int64 // partial reliability, in milliseconds; nil when absent
	Priority    int    // 0 when absent (RFC 8864 §5.1.8: 256)
	// MSRP holds the a=dcsa attributes: path, accept-types, setup,
	// msrp-cema, file-selector and the others of RFC 8873 §4.4. nil for a
	// channel that is not MSRP's.
	MSRP *SDPMedia
	// Attributes are the a=dcsa lines not decoded into MSRP, kept.
	Attributes []SDPAttribute
}

// Errors of data channel negotiation.
var (
	ErrSDPDataChannel = errors.New("msrp: bad data channel attributes")
)

// IsMSRP reports whether the channel's subprotocol is MSRP's.
func (ch *SDPDataChannel) IsMSRP() bool { return strings.EqualFold(ch.Subprotocol, "msrp") }

// DataChannels decodes the a=dcmap and a=dcsa attributes of a data channel
// section (m=application ... UDP/DTLS/SCTP webrtc-datachannel). An MSRP
// channel must carry the dcsa attributes RFC 8873 §4.4 requires (path,
// msrp-cema, setup) and no max-retr or max-time; two dcmap lines with one
// stream id, a bad dcmap, or a dcsa line for a stream no dcmap names, are
// errors naming the stream.
func (m *SDPMedia) DataChannels() ([]*SDPDataChannel, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrSDPDataChannel, fmt.Sprintf(format, args...))
	}
	var chans []*SDPDataChannel
	byID := map[int]*SDPDataChannel{}
	for _, a := range m.Attributes {
		if a.Name != "dcmap" {
			continue
		}
		ch, err := parseDCMap(a.Value)
		if err != nil {
			return nil, bad("a=dcmap:%s: %v", clip(a.Value), err)
		}
		if byID[ch.StreamID] != nil {
			return nil, bad("two a=dcmap lines for stream %d", ch.StreamID)
		}
		byID[ch.StreamID] = ch
		chans = append(chans, ch)
	}
	for _, a := range m.Attributes {
		if a.Name != "dcsa" {
			continue
		}
		id, attr, ok := strings.Cut(a.Value, " ")
		n, err := strconv.Atoi(id)
		if !ok || !isDigits(id) || err != nil {
			return nil, bad("a=dcsa:%s: want <stream id> <attribute>", clip(a.Value))
		}
		ch := byID[n]
		if ch == nil {
			return nil, bad("a=dcsa for stream %d, which no a=dcmap names", n)
		}
		if !ch.IsMSRP() {
			name, value, _ := strings.Cut(attr, ":")
			ch.Attributes = append(ch.Attributes, SDPAttribute{name, value})
			continue
		}
		if ch.MSRP == nil {
			ch.MSRP = &SDPMedia{Media: "message", Proto: ProtoMSRPTLS, Formats: []string{"*"}, Port: m.Port, Address: m.Address}
		}
		if err := ch.MSRP.parseAttribute(attr); err != nil {
			return nil, bad("stream %d: %v", n, err)
		}
	}
	for _, ch := range chans {
		if !ch.IsMSRP() {
			continue
		}
		switch {
		case ch.MaxRetr != nil || ch.MaxTime != nil || ch.Unordered:
			return nil, bad("MSRP stream %d must be reliable and ordered: no max-retr, max-time or ordered=false (RFC 8873 §4.3)", ch.StreamID)
		case ch.MSRP == nil || len(ch.MSRP.Path) == 0:
			return nil, bad("MSRP stream %d without a=dcsa path (RFC 8873 §4.4)", ch.StreamID)
		case ch.MSRP.Setup == SetupUnset:
			return nil, bad("MSRP stream %d without a=dcsa setup (RFC 8873 §4.4)", ch.StreamID)
		case !ch.MSRP.CEMA:
			return nil, bad("MSRP stream %d without a=dcsa msrp-cema (RFC 8873 §4.4)", ch.StreamID)
		}
	}
	return chans, nil
}

// MSRPChannel returns the MSRP data channel of the section with the given
// stream id, or the first when id is negative.
func (m *SDPMedia) MSRPChannel(id int) (*SDPDataChannel, error) {
	chans, err := m.DataChannels()
	if err != nil {
		return nil, err
	}
	for _, ch := range chans {
		if ch.IsMSRP() && (id < 0 || ch.StreamID == id) {
			return ch, nil
		}
	}
	return nil, fmt.Errorf("%w: no MSRP data channel", ErrSDPNoMSRP)
}

// SetDataChannels writes chans as a=dcmap and a=dcsa attributes, in place
// of the section's, and sets msrp-cema on MSRP channels, which RFC 8873
// §4.4 requires.
func (m *SDPMedia) SetDataChannels(chans []*SDPDataChannel) {
	m.Attributes = slices.DeleteFunc(m.Attributes, func(a SDPAttribute) bool { return a.Name == "dcmap" || a.Name == "dcsa" })
	for _, ch := range chans {
		m.Attributes = append(m.Attributes, SDPAttribute{"dcmap", ch.dcmap()})
	}
	for _, ch := range chans {
		prefix := strconv.Itoa(ch.StreamID) + " "
		if ch.MSRP != nil {
			ch.MSRP.CEMA = true
			for _, a := range ch.MSRP.attributes() {
				v := a.Name
				if a.Value != "" || slices.Contains(valuedAttributes, a.Name) {
					v += ":" + a.Value
				}
				m.Attributes = append(m.Attributes, SDPAttribute{"dcsa", prefix + v})
			}
		}
		for _, a := range ch.Attributes {
			v := a.Name
			if a.Value != "" {
				v += ":" + a.Value
			}
			m.Attributes = append(m.Attributes, SDPAttribute{"dcsa", prefix + v})
		}
	}
}

// MaxMessageSize is the section's a=max-message-size (RFC 8841), or 0.
func (m *SDPMedia) MaxMessageSize() int {
	for _, a := range m.Attributes {
		if a.Name == "max-message-size" {
			if n, err := strconv.Atoi(a.Value); err == nil && n > 0 {
				return n
			}
		}
	}
	return 0
}

func (ch *SDPDataChannel) dcmap() string {
	opts := []string{}
	if ch.Label != "" {
		opts = append(opts, "label="+quoteDC(ch.Label))
	}
	if ch.Subprotocol != "" {
		opts = append(opts, "subprotocol="+quoteDC(ch.Subprotocol))
	}
	if ch.Unordered {
		opts = append(opts, "ordered=false")
	}
	if ch.MaxRetr != nil {
		opts = append(opts, "max-retr="+strconv.FormatInt(*ch.MaxRetr, 10))
	}
	if ch.MaxTime != nil {
		opts = append(opts, "max-time="+strconv.FormatInt(*ch.MaxTime, 10))
	}
	if ch.Priority > 0 {
		opts = append(opts, "priority="+strconv.Itoa(ch.Priority))
	}
	v := strconv.Itoa(ch.StreamID)
	if len(opts) > 0 {
		v += " " + strings.Join(opts, ";")
	}
	return v
}

// quoteDC quotes a label or subprotocol as RFC 8864 §5.1.3 does: bytes
// outside quoted-char percent-encoded.
func quoteDC(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == ' ' || c == 0x21 || c >= 0x23 && c <= 0x24 || c >= 0x26 && c <= 0x7e {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func unquoteDC(s string) (string, error) {
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return "", fmt.Errorf("%q is not quoted", s)
	}
	s = s[1 : len(s)-1]
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '%':
			if i+2 >= len(s) {
				return "", fmt.Errorf("%q: bad escape", s)
			}
			n, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
			if err != nil {
				return "", fmt.Errorf("%q: bad escape", s)
			}
			b.WriteByte(byte(n))
			i += 2
		case c == '"':
			return "", fmt.Errorf("%q: a quote inside", s)
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

// splitOutsideQuotes splits s at each sep that is not inside double quotes.
func splitOutsideQuotes(s string, sep byte) []string {
	var parts []string
	quoted, start := false, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			quoted = !quoted
		case sep:
			if !quoted {
				parts = append(parts, s[start:i])
				start = i + 1
			}
		}
	}
	return append(parts, s[start:])
}

func parseDCMap(v string) (*SDPDataChannel, error) {
	id, opts, _ := strings.Cut(v, " ")
	n, err := strconv.Atoi(id)
	if !isDigits(id) || len(id) > 5 || err != nil || n > 65535 {
		return nil, errors.New("want a stream id of up to 5 digits")
	}
	ch := &SDPDataChannel{StreamID: n}
	if opts == "" {
		return ch, nil
	}
	for _, opt := range splitOutsideQuotes(opts, ';') {
		name, value, ok := strings.Cut(strings.TrimSpace(opt), "=")
		if !ok {
			return nil, fmt.Errorf("option %q: want name=value", opt)
		}
		switch name {
		case "label":
			if ch.Label, err = unquoteDC(value); err != nil {
				return nil, fmt.Errorf("label: %v", err)
			}
		case "subprotocol":
			if ch.Subprotocol, err = unquoteDC(value); err != nil {
				return nil, fmt.Errorf("subprotocol: %v", err)
			}
		case "ordered":
			ch.Unordered = value == "false" // any other value is ignored (§5.1.7)
		case "max-retr", "max-time":
			n, err := strconv.ParseInt(value, 10, 64)
			if !isDigits(value) || err != nil || n >= 1<<32 {
				return nil, fmt.Errorf("%s: want a number under 2^32", name)
			}
			if name == "max-retr" {
				ch.MaxRetr = &n
			} else {
				ch.MaxTime = &n
			}
		case "priority":
			n, err := strconv.Atoi(value)
			if !isDigits(value) || err != nil || n >= 1<<16 {
				return nil, errors.New("priority: want a number under 2^16")
			}
			ch.Priority = n
		default:
			return nil, fmt.Errorf("unknown option %q", name)
		}
	}
	if ch.MaxRetr != nil && ch.MaxTime != nil {
		return nil, errors.New("max-retr and max-time together (RFC 8864 §5.1.5)")
	}
	return ch, nil
}
