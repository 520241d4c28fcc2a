package msrp

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// SDP is a session description (RFC 8866) as an MSRP application offers
// and answers it in SIP: the session-level lines, kept as they came, and
// the media sections, those for MSRP (m=message, RFC 4975 §8) decoded.
// ParseSDP reads one, Marshal writes one, and NewSDP makes an offer's.
type SDP struct {
	// Lines are the session-level lines but c= (v=, o=, s=, t= and any
	// other), in order.
	Lines []SDPLine
	// Address is the session-level c= address, if any.
	Address string
	// Media are the media sections, in order.
	Media []*SDPMedia

	addrType string // "IP4" or "IP6" as c= said; guessed from Address when empty
}

// SDPLine is one line of a description: its type letter and its value.
type SDPLine struct {
	Type  byte
	Value string
}

// SDPAttribute is an a= line that this package does not decode, kept as
// it came: Value is empty for a flag.
type SDPAttribute struct {
	Name, Value string
}

// SDPSetup is the a=setup value (RFC 6135 with RFC 4145's values): which
// end opens the connection.
type SDPSetup string

// The a=setup values MSRP uses. SetupUnset is an absent attribute, where
// RFC 4975 §5.4 makes the offerer the active end.
const (
	SetupUnset   SDPSetup = ""
	SetupActive  SDPSetup = "active"  // this end connects
	SetupPassive SDPSetup = "passive" // this end accepts
	SetupActPass SDPSetup = "actpass" // either: the answer decides (offers only)
)

// SDPDirection is a media section's direction attribute (RFC 4975 §8.9):
// which way SENDs with content may go.
type SDPDirection string

// The direction attributes. DirectionUnset reads as sendrecv.
const (
	DirectionUnset    SDPDirection = ""
	DirectionSendRecv SDPDirection = "sendrecv"
	DirectionSendOnly SDPDirection = "sendonly"
	DirectionRecvOnly SDPDirection = "recvonly"
	DirectionInactive SDPDirection = "inactive"
)

// SDPMedia is one media section. For MSRP (Media "message") its
// attributes are decoded into the fields; attributes that are not, and
// every attribute of other media, stay in Attributes.
type SDPMedia struct {
	Media   string   // "message" for MSRP
	Port    int      // the m= port; 0 rejects the stream (RFC 4975 §8.1)
	Proto   string   // "TCP/MSRP", or "TCP/TLS/MSRP" for msrps
	Formats []string // "*" for MSRP
	Address string   // the media-level c= address, if any
	// Other lines of the section (i=, b=, k=), in order.
	Lines []SDPLine

	addrType string // as for SDP

	Path               []URI        // a=path: the peer's hops, its own URI last (§8.2)
	AcceptTypes        []string     // a=accept-types, required (§8.6)
	AcceptWrappedTypes []string     // a=accept-wrapped-types
	MaxSize            int64        // a=max-size in octets; 0 when absent
	Setup              SDPSetup     // a=setup (RFC 6135)
	Fingerprints       []string     // a=fingerprint values, "sha-256 4A:AD:..." (RFC 8122)
	CEMA               bool         // a=msrp-cema (RFC 6714)
	Direction          SDPDirection // a=sendrecv, sendonly, recvonly or inactive

	// File transfer (RFC 5547): one file per media section.
	File            *FileSelector // a=file-selector
	FileTransferID  string        // a=file-transfer-id
	FileDisposition string        // a=file-disposition: "render" (default) or "attachment"
	FileDate        FileDates     // a=file-date
	FileIcon        string        // a=file-icon, a cid: URL
	FileRange       *FileRange    // a=file-range

	Attributes []SDPAttribute // the a= lines not decoded above, in order
}

// FileDates are the dates of a=file-date (RFC 5547 §6); zero when absent.
type FileDates struct {
	Creation, Modification, Read time.Time
}

// FileRange is a=file-range (RFC 5547 §6): the octets offered, from 1;
// Stop is inclusive, Unknown for "*".
type FileRange struct {
	Start, Stop int64
}

// Errors of SDP parsing and negotiation. They are wrapped with detail; test
// for them with errors.Is.
var (
	ErrSDPSyntax         = errors.New("msrp: malformed SDP")
	ErrSDPNoMSRP         = errors.New("msrp: no MSRP media section (m=message) in SDP")
	ErrSDPNoPath         = errors.New("msrp: MSRP media section without a=path")
	ErrSDPNoAcceptTypes  = errors.New("msrp: MSRP media section without a=accept-types")
	ErrSDPSetupConflict  = errors.New("msrp: conflicting a=setup values")
	ErrSDPNoCommonType   = errors.New("msrp: no media type that both ends accept")
	ErrSDPBadFileSelect  = errors.New("msrp: bad a=file-selector")
	ErrSDPBadAttribute   = errors.New("msrp: bad SDP attribute value")
	ErrSDPMaxSizeTooLong = errors.New("msrp: a=max-size out of range")
)

// ProtoMSRP and ProtoMSRPTLS are the m= protocols of MSRP over TCP and TLS
// (RFC 4975 §8.1); RFC 7977 keeps them over WebSocket.
const (
	ProtoMSRP    = "TCP/MSRP"
	ProtoMSRPTLS = "TCP/TLS/MSRP"
)

// maxSDPSize bounds a description ParseSDP reads.
const maxSDPSize = 64 << 10

// ParseSDP reads a session description. Lines end with CRLF or LF. A
// malformed line, or an MSRP section whose known attributes do not follow
// their grammar, is an error naming the line; an attribute it does not
// know is kept in Attributes. It does not require the MSRP attributes: Use
// MSRP for the section, which checks them.
func ParseSDP(body []byte) (*SDP, error) {
	if len(body) > maxSDPSize {
		return nil, fmt.Errorf("%w: over %d bytes", ErrSDPSyntax, maxSDPSize)
	}
	d := &SDP{}
	var m *SDPMedia
	for i, line := range strings.Split(strings.TrimRight(string(body), "\r\n"), "\n") {
		line = strings.TrimSuffix(line, "\r")
		if line == "" {
			continue
		}
		if len(line) < 2 || line[1] != '=' || line[0] < 'a' || line[0] > 'z' {
			return nil, fmt.Errorf("%w: line %d: want <type>=<value>, got %q", ErrSDPSyntax, i+1, clip(line))
		}
		if strings.ContainsAny(line, "\r\x00") { // RFC 8866's byte-string has no CR or NUL
			return nil, fmt.Errorf("%w: line %d: a CR or NUL inside the line", ErrSDPSyntax, i+1)
		}
		typ, value := line[0], line[2:]
		var err error
		switch {
		case typ == 'm':
			m, err = parseMediaLine(value)
			if err == nil {
				d.Media = append(d.Media, m)
			}
		case typ == 'c' && m == nil:
			d.Address, d.addrType, err = parseConnection(value)
		case m == nil:
			d.Lines = append(d.Lines, SDPLine{typ, value})
		case typ == 'c':
			m.Address, m.addrType, err = parseConnection(value)
		case typ == 'a':
			err = m.parseAttribute(value)
		default:
			m.Lines = append(m.Lines, SDPLine{typ, value})
		}
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
	}
	return d, nil
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

func parseMediaLine(v string) (*SDPMedia, error) {
	f := strings.Fields(v)
	if len(f) < 3 {
		return nil, fmt.Errorf("%w: m=%s: want <media> <port> <proto> <formats>", ErrSDPSyntax, v)
	}
	port, err := strconv.Atoi(strings.SplitN(f[1], "/", 2)[0])
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("%w: m=%s: bad port", ErrSDPSyntax, v)
	}
	return &SDPMedia{Media: f[0], Port: port, Proto: f[2], Formats: f[3:]}, nil
}

// parseConnection reads "IN IP4 <address>" (or IP6) and returns the
// address and its type.
func parseConnection(v string) (addr, typ string, err error) {
	f := strings.Fields(v)
	if len(f) != 3 || f[0] != "IN" || (f[1] != "IP4" && f[1] != "IP6") {
		return "", "", fmt.Errorf("%w: c=%s: want IN IP4|IP6 <address>", ErrSDPSyntax, v)
	}
	return f[2], f[1], nil
}

// connection writes a c= value; typ is the type the address came with.
func connection(addr, typ string) string {
	if typ == "" {
		typ = ipVersion(addr)
	}
	return "IN " + typ + " " + addr
}

// parseAttribute decodes one a= line of a media section.
func (m *SDPMedia) parseAttribute(v string) error {
	name, value, hasValue := strings.Cut(v, ":")
	if !isToken(name) { // RFC 8866 §9: att-field = token
		return fmt.Errorf("%w: a=%s: the attribute name is not a token", ErrSDPSyntax, clip(v))
	}
	if m.Media != "message" {
		m.Attributes = append(m.Attributes, SDPAttribute{name, value})
		return nil
	}
	bad := func(why string) error {
		return fmt.Errorf("%w: a=%s: %s", ErrSDPBadAttribute, clip(v), why)
	}
	var err error
	switch name {
	case "path":
		if m.Path, err = ParsePath(value); err != nil {
			return bad(err.Error())
		}
	case "accept-types", "accept-wrapped-types":
		types := strings.Fields(value)
		for _, t := range types {
			if t != "*" && !readableMediaType(t) && !isWildcardType(t) {
				return bad("not a media type: " + strconv.Quote(t))
			}
		}
		if name == "accept-types" {
			m.AcceptTypes = types
		} else {
			m.AcceptWrappedTypes = types
		}
	case "max-size":
		if !isDigits(value) {
			return bad("want a number of octets")
		}
		if m.MaxSize, err = strconv.ParseInt(value, 10, 64); err != nil {
			return fmt.Errorf("%w: a=max-size:%s", ErrSDPMaxSizeTooLong, clip(value))
		}
	case "setup":
		switch s := SDPSetup(strings.ToLower(value)); s {
		case SetupActive, SetupPassive, SetupActPass:
			m.Setup = s
		case "holdconn": // RFC 6135 §4.2.1: read as if absent
		default:
			return bad("want active, passive or actpass")
		}
	case "fingerprint":
		if _, err := VerifyFingerprint(value); err != nil {
			return bad(err.Error())
		}
		m.Fingerprints = append(m.Fingerprints, value)
	case "msrp-cema":
		m.CEMA = true
	case "sendrecv", "sendonly", "recvonly", "inactive":
		m.Direction = SDPDirection(name)
	case "file-selector":
		if m.File, err = ParseFileSelector(value); err != nil {
			return err
		}
	case "file-transfer-id":
		if !isToken(value) {
			return bad("want a token")
		}
		m.FileTransferID = value
	case "file-disposition":
		if !isToken(value) {
			return bad("want a token")
		}
		m.FileDisposition = value
	case "file-date":
		if m.FileDate, err = parseFileDates(value); err != nil {
			return bad(err.Error())
		}
	case "file-icon":
		if !strings.HasPrefix(strings.ToLower(value), "cid:") {
			return bad("want a cid: URL")
		}
		m.FileIcon = value
	case "file-range":
		r, err := parseFileRange(value)
		if err != nil {
			return bad(err.Error())
		}
		m.FileRange = r
	default:
		if !hasValue {
			value = ""
		}
		m.Attributes = append(m.Attributes, SDPAttribute{name, value})
	}
	return nil
}

func isWildcardType(t string) bool {
	typ, sub, ok := strings.Cut(t, "/")
	return ok && sub == "*" && isToken(typ)
}

// MSRP returns the first MSRP media section that is not rejected (port 0),
// checked: it has a path and accept-types, and its protocol is MSRP's. A
// section without a c= line takes the session's (CEMA dials it).
func (d *SDP) MSRP() (*SDPMedia, error) {
	for _, m := range d.Media {
		if m.Media != "message" || m.Port == 0 {
			continue
		}
		if m.Address == "" {
			m.Address, m.addrType = d.Address, d.addrType
		}
		return m, m.check()
	}
	return nil, ErrSDPNoMSRP
}

// check tells whether an MSRP section has what RFC 4975 §8 requires.
func (m *SDPMedia) check() error {
	switch {
	case m.Proto != ProtoMSRP && m.Proto != ProtoMSRPTLS:
		return fmt.Errorf("%w: m=message protocol %q: want %s or %s", ErrSDPSyntax, m.Proto, ProtoMSRP, ProtoMSRPTLS)
	case len(m.Path) == 0:
		return ErrSDPNoPath
	case len(m.AcceptTypes) == 0:
		return ErrSDPNoAcceptTypes
	case m.File != nil && m.File.Name == "" && m.File.Type == "" && m.File.Size == 0 && m.File.Hash == "":
		return fmt.Errorf("%w: no selector", ErrSDPBadFileSelect)
	}
	return nil
}

// NewSDP makes a session description holding media: v=0, an o= line for
// its session id and version, s=-, the c= address of the first section's
// path and t=0 0. RFC 4975 §8.1 wants c= and each m= port to be those of
// the section's own URI, the last of its path: set Port and Address from
// it with SDPMedia.UsePath.
func NewSDP(sessionID, version int64, media ...*SDPMedia) *SDP {
	d := &SDP{Media: media}
	addr := "0.0.0.0"
	if len(media) > 0 && len(media[0].Path) > 0 {
		addr = media[0].Path[len(media[0].Path)-1].Host
	}
	d.Lines = []SDPLine{
		{'v', "0"},
		{'o', fmt.Sprintf("- %d %d IN %s %s", sessionID, version, ipVersion(addr), addr)},
		{'s', "-"},
		{'t', "0 0"},
	}
	d.Address = addr
	return d
}

func ipVersion(host string) string {
	if a, err := netip.ParseAddr(host); err == nil && a.Is6() && !a.Is4In6() {
		return "IP6"
	}
	return "IP4"
}

// Marshal writes the description with CRLF line ends, the lines of each
// section in RFC 8866's order: m=, i=, c=, b=, k=, a=.
func (d *SDP) Marshal() []byte {
	var b strings.Builder
	line := func(typ byte, v string) {
		b.WriteByte(typ)
		b.WriteByte('=')
		b.WriteString(v)
		b.WriteString("\r\n")
	}
	wroteC := d.Address == ""
	for _, l := range d.Lines {
		if !wroteC && strings.IndexByte("btrzka", l.Type) >= 0 { // c= comes before these
			line('c', connection(d.Address, d.addrType))
			wroteC = true
		}
		line(l.Type, l.Value)
	}
	if !wroteC {
		line('c', connection(d.Address, d.addrType))
	}
	for _, m := range d.Media {
		line('m', strings.Join(append([]string{m.Media, strconv.Itoa(m.Port), m.Proto}, m.Formats...), " "))
		for _, l := range m.Lines {
			if l.Type == 'i' {
				line(l.Type, l.Value)
			}
		}
		if m.Address != "" {
			line('c', connection(m.Address, m.addrType))
		}
		for _, l := range m.Lines {
			if l.Type != 'i' {
				line(l.Type, l.Value)
			}
		}
		for _, a := range m.attributes() {
			if a.Value == "" && !slices.Contains(valuedAttributes, a.Name) {
				line('a', a.Name)
			} else {
				line('a', a.Name+":"+a.Value)
			}
		}
	}
	return []byte(b.String())
}

// valuedAttributes are those written name:value even when empty.
var valuedAttributes = []string{"accept-types", "accept-wrapped-types"}

// attributes lists the section's a= lines as Marshal writes them.
func (m *SDPMedia) attributes() []SDPAttribute {
	var out []SDPAttribute
	add := func(name, value string) { out = append(out, SDPAttribute{name, value}) }
	if m.Direction != DirectionUnset {
		add(string(m.Direction), "")
	}
	if m.AcceptTypes != nil {
		add("accept-types", strings.Join(m.AcceptTypes, " "))
	}
	if len(m.AcceptWrappedTypes) > 0 {
		add("accept-wrapped-types", strings.Join(m.AcceptWrappedTypes, " "))
	}
	if m.MaxSize > 0 {
		add("max-size", strconv.FormatInt(m.MaxSize, 10))
	}
	if len(m.Path) > 0 {
		add("path", FormatPath(m.Path))
	}
	if m.Setup != SetupUnset {
		add("setup", string(m.Setup))
	}
	for _, f := range m.Fingerprints {
		add("fingerprint", f)
	}
	if m.CEMA {
		add("msrp-cema", "")
	}
	if m.File != nil {
		add("file-selector", m.File.String())
	}
	if m.FileTransferID != "" {
		add("file-transfer-id", m.FileTransferID)
	}
	if m.FileDisposition != "" {
		add("file-disposition", m.FileDisposition)
	}
	if d := m.FileDate.String(); d != "" {
		add("file-date", d)
	}
	if m.FileIcon != "" {
		add("file-icon", m.FileIcon)
	}
	if m.FileRange != nil {
		add("file-range", m.FileRange.String())
	}
	return append(out, m.Attributes...)
}

// UsePath sets the section's path and, as RFC 4975 §8.1 asks, its m= port
// and c= address from the last URI (its own), and its protocol from that
// URI's scheme. A section whose setup is active may set Port to 9 after
// (RFC 6135 §4.2.2).
func (m *SDPMedia) UsePath(path []URI) {
	m.Path = path
	if len(path) == 0 {
		return
	}
	own := path[len(path)-1]
	if m.Media == "" {
		m.Media = "message"
	}
	if m.Formats == nil {
		m.Formats = []string{"*"}
	}
	m.Port = own.Port
	m.Address = own.Host
	m.Proto = ProtoMSRP
	if own.UseTLS {
		m.Proto = ProtoMSRPTLS
	}
}

// String is the file-range value: "start-stop".
func (r FileRange) String() string {
	stop := "*"
	if r.Stop != Unknown {
		stop = strconv.FormatInt(r.Stop, 10)
	}
	return strconv.FormatInt(r.Start, 10) + "-" + stop
}

func parseFileRange(v string) (*FileRange, error) {
	start, stop, ok := strings.Cut(v, "-")
	r := &FileRange{Stop: Unknown}
	var err error
	if !ok || !isDigits(start) {
		return nil, errors.New("want start-stop")
	}
	if r.Start, err = strconv.ParseInt(start, 10, 64); err != nil || r.Start < 1 {
		return nil, errors.New("the start counts from 1")
	}
	if stop != "*" {
		if !isDigits(stop) {
			return nil, errors.New("want start-stop")
		}
		if r.Stop, err = strconv.ParseInt(stop, 10, 64); err != nil || r.Stop < r.Start {
			return nil, errors.New("the stop is before the start")
		}
	}
	return r, nil
}

// fileDateLayout is RFC 5322's date-time with a numeric zone, as RFC 5547
// §6 asks.
const fileDateLayout = "Mon, 02 Jan 2006 15:04:05 -0700"

// String is the file-date value, or "" when no date is set.
func (d FileDates) String() string {
	var parts []string
	for _, p := range []struct {
		name string
		t    time.Time
	}{{"creation", d.Creation}, {"modification", d.Modification}, {"read", d.Read}} {
		if !p.t.IsZero() {
			parts = append(parts, p.name+`:"`+p.t.Format(fileDateLayout)+`"`)
		}
	}
	return strings.Join(parts, " ")
}

// parseRFC5322Date reads RFC 5322's date-time: the day of the week is
// optional and the day may have one digit.
func parseRFC5322Date(s string) (time.Time, error) {
	var err error
	for _, layout := range []string{fileDateLayout, "Mon, 2 Jan 2006 15:04:05 -0700", "02 Jan 2006 15:04:05 -0700", "2 Jan 2006 15:04:05 -0700"} {
		var t time.Time
		if t, err = time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, err
}

func parseFileDates(v string) (FileDates, error) {
	var d FileDates
	for rest := strings.TrimSpace(v); rest != ""; rest = strings.TrimSpace(rest) {
		name, after, ok := strings.Cut(rest, `:"`)
		end := strings.IndexByte(after, '"')
		if !ok || end < 0 {
			return FileDates{}, errors.New(`want creation:"<date>", modification:"<date>" or read:"<date>"`)
		}
		t, err := parseRFC5322Date(after[:end])
		if err != nil {
			return FileDates{}, fmt.Errorf("date %q: want an RFC 5322 date with a numeric zone", after[:end])
		}
		var slot *time.Time
		switch name {
		case "creation":
			slot = &d.Creation
		case "modification":
			slot = &d.Modification
		case "read":
			slot = &d.Read
		default:
			return FileDates{}, fmt.Errorf("unknown date %q", name)
		}
		if !slot.IsZero() {
			return FileDates{}, fmt.Errorf("two %s dates", name)
		}
		*slot = t
		rest = after[end+1:]
	}
	return d, nil
}
