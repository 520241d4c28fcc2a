package msrp

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// DefaultPort is the MSRP port (RFC 4975 §15.4), used when a URI has none.
const DefaultPort = 2855

// URI is an MSRP URI (RFC 4975 §6):
//
//	msrp[s]://[user@]host[:port][/session-id];transport[;param[=value]]...
//
// It is a plain value: copies never share state. The zero Port means the URI
// carries no port; it is dialled on DefaultPort. An empty SessionID is a
// relay URI (RFC 4976 §6). Host holds an IPv6 address without its brackets;
// String adds them back.
type URI struct {
	UseTLS    bool    // msrps (true) or msrp (false)
	User      string  // userinfo before "@", raw; ignored when comparing
	Host      string  // host name or IP address, without IPv6 brackets
	Port      int     // 0: absent (DefaultPort when dialling)
	SessionID string  // session-id; empty for a relay URI
	Transport string  // "tcp" unless a peer says otherwise
	Params    []Param // URI parameters after the transport, in order; ignored when comparing
}

// Param is one name[=value] pair, of a URI or of a digest header. An empty
// Value prints as a bare name.
type Param struct {
	Name, Value string
}

// ParseURI parses an MSRP URI. The scheme is matched case-insensitively and
// printed in lower case; everything else is kept as written, so a URI in the
// usual lower-case scheme prints back byte for byte. Unlike msrplib it does
// not invent a session id for a URI that has none.
func ParseURI(s string) (URI, error) {
	u, reason := parseURI(s, true)
	if reason != "" {
		return URI{}, uriError(s, reason)
	}
	return u, nil
}

// parseURI parses an MSRP URI, or says why it cannot. With keepParams
// false the parameters are checked but not kept, and nothing is allocated.
func parseURI(s string, keepParams bool) (URI, string) {
	var u URI
	rest, ok := cutPrefixFold(s, "msrps://")
	if ok {
		u.UseTLS = true
	} else if rest, ok = cutPrefixFold(s, "msrp://"); !ok {
		return URI{}, "scheme is not msrp:// or msrps://"
	}

	// The authority ends at the first "/" (session id) or ";" (transport).
	end := strings.IndexAny(rest, "/;")
	if end < 0 {
		return URI{}, "missing ;transport"
	}
	authority := rest[:end]
	rest = rest[end:]
	if at := strings.LastIndexByte(authority, '@'); at >= 0 {
		u.User = authority[:at]
		authority = authority[at+1:]
		if !validUserinfo(u.User) {
			return URI{}, "invalid userinfo"
		}
	}
	if err := u.parseHostPort(authority); err != "" {
		return URI{}, err
	}

	if rest[0] == '/' {
		end = strings.IndexByte(rest, ';')
		if end < 0 {
			return URI{}, "missing ;transport"
		}
		u.SessionID = rest[1:end]
		if !validSessionID(u.SessionID) {
			return URI{}, "invalid session id"
		}
		rest = rest[end:]
	}

	// rest is ";transport[;param...]".
	var more bool
	u.Transport, rest, more = strings.Cut(rest[1:], ";")
	if !isToken(u.Transport) {
		return URI{}, "invalid transport"
	}
	for more {
		var p string
		p, rest, more = strings.Cut(rest, ";")
		name, value, hasValue := strings.Cut(p, "=")
		if !isToken(name) || (hasValue && !isToken(value)) {
			return URI{}, "invalid parameter " + strconv.Quote(p)
		}
		if keepParams {
			u.Params = append(u.Params, Param{Name: name, Value: value})
		}
	}
	return u, ""
}

// parseHostPort fills Host and Port; it returns a reason on failure.
func (u *URI) parseHostPort(hp string) string {
	host, port := hp, ""
	if strings.HasPrefix(hp, "[") {
		closing := strings.IndexByte(hp, ']')
		if closing < 0 {
			return "unclosed [ in host"
		}
		host = hp[1:closing]
		after := hp[closing+1:]
		if after != "" {
			if after[0] != ':' {
				return "junk after ]"
			}
			port = after[1:]
			if port == "" {
				return "empty port"
			}
		}
		addr, err := netip.ParseAddr(host)
		if err != nil || !addr.Is6() || addr.Zone() != "" {
			return "invalid IPv6 address"
		}
	} else {
		if i := strings.LastIndexByte(hp, ':'); i >= 0 {
			host, port = hp[:i], hp[i+1:]
			if port == "" {
				return "empty port"
			}
		}
		if !validRegName(host) {
			return "invalid host"
		}
	}
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 || port[0] == '+' || port[0] == '0' {
			return "invalid port " + strconv.Quote(port)
		}
		u.Port = n
	}
	u.Host = host
	return ""
}

func uriError(s, reason string) error {
	return errors.New("msrp: cannot parse URI " + strconv.Quote(s) + ": " + reason)
}

// Scheme returns "msrps" or "msrp".
func (u URI) Scheme() string {
	if u.UseTLS {
		return "msrps"
	}
	return "msrp"
}

// String prints the URI in the form ParseURI reads. A zero Port is left out;
// an empty Transport prints as "tcp".
func (u URI) String() string {
	return string(u.appendTo(make([]byte, 0, 64)))
}

func (u URI) appendTo(b []byte) []byte {
	b = append(b, u.Scheme()...)
	b = append(b, "://"...)
	if u.User != "" {
		b = append(b, u.User...)
		b = append(b, '@')
	}
	if strings.IndexByte(u.Host, ':') >= 0 {
		b = append(b, '[')
		b = append(b, u.Host...)
		b = append(b, ']')
	} else {
		b = append(b, u.Host...)
	}
	if u.Port != 0 {
		b = append(b, ':')
		b = strconv.AppendInt(b, int64(u.Port), 10)
	}
	if u.SessionID != "" {
		b = append(b, '/')
		b = append(b, u.SessionID...)
	}
	b = append(b, ';')
	if u.Transport == "" {
		b = append(b, "tcp"...)
	} else {
		b = append(b, u.Transport...)
	}
	for _, p := range u.Params {
		b = append(b, ';')
		b = append(b, p.Name...)
		if p.Value != "" {
			b = append(b, '=')
			b = append(b, p.Value...)
		}
	}
	return b
}

// Equal compares two URIs by the rules of RFC 4975 §6.1: the scheme, the
// host (case-insensitively, after percent-decoding, and as an address when
// both are IP addresses, so that [::1] equals [0:0:0:0:0:0:0:1]), the port
// (an absent port counts as 2855), the session id (case-sensitively) and
// the transport (case-insensitively; empty counts as "tcp"). User and
// parameters are ignored.
func (u URI) Equal(v URI) bool {
	return u.UseTLS == v.UseTLS &&
		u.portOrDefault() == v.portOrDefault() &&
		u.SessionID == v.SessionID &&
		strings.EqualFold(u.transportOrDefault(), v.transportOrDefault()) &&
		hostsEqual(u.Host, v.Host)
}

func hostsEqual(a, b string) bool {
	if asciiEqualFold(a, b) {
		return true
	}
	return normalHost(a) == normalHost(b)
}

// asciiEqualFold is strings.EqualFold for ASCII letters only: host names
// fold no other case (the Kelvin sign is not "k").
func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// normalHost is a host in the form URI comparison uses: an IP address
// printed canonically, or a name with ASCII letters in lower case, the
// percent-encodings of unreserved characters decoded, and the others with
// upper-case hex digits (RFC 3986 §6.2.2). Bytes outside ASCII are kept as
// they are, so that different bytes never compare equal.
func normalHost(h string) string {
	if addr, err := netip.ParseAddr(h); err == nil {
		return addr.String()
	}
	if !strings.ContainsAny(h, "%ABCDEFGHIJKLMNOPQRSTUVWXYZ") {
		return h
	}
	b := make([]byte, 0, len(h))
	for i := 0; i < len(h); i++ {
		c := h[i]
		if c == '%' && validPctEncoded(h, i) {
			c = unhex(h[i+1])<<4 | unhex(h[i+2])
			i += 2
			if !isUnreserved(c) {
				b = append(b, '%', upperHex[c>>4], upperHex[c&15])
				continue
			}
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b = append(b, c)
	}
	return string(b)
}

const upperHex = "0123456789ABCDEF"

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// HostPort returns the address to dial, "host:port", with DefaultPort when the
// URI has no port and brackets around an IPv6 host.
func (u URI) HostPort() string {
	return net.JoinHostPort(u.Host, strconv.Itoa(u.portOrDefault()))
}

func (u URI) portOrDefault() int {
	if u.Port == 0 {
		return DefaultPort
	}
	return u.Port
}

func (u URI) transportOrDefault() string {
	if u.Transport == "" {
		return "tcp"
	}
	return u.Transport
}

// ParsePath parses a space-separated list of MSRP URIs: the value of an SDP
// a=path attribute or of a To-Path, From-Path or Use-Path header. Runs of
// spaces are accepted; an empty list is an error.
func ParsePath(s string) ([]URI, error) {
	fields := strings.Fields(s)
	if len(fields) == 0 {
		return nil, errors.New("msrp: empty path")
	}
	path := make([]URI, len(fields))
	for i, f := range fields {
		u, err := ParseURI(f)
		if err != nil {
			return nil, err
		}
		path[i] = u
	}
	return path, nil
}

// FormatPath prints URIs separated by single spaces, as a=path and the path
// headers carry them.
func FormatPath(path []URI) string {
	b := make([]byte, 0, 64*len(path))
	for i, u := range path {
		if i > 0 {
			b = append(b, ' ')
		}
		b = u.appendTo(b)
	}
	return string(b)
}

// pathEqual reports whether two paths have the same length and pairwise
// Equal URIs.
func pathEqual(a, b []URI) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].Equal(b[i]) {
			return false
		}
	}
	return true
}

// NewSessionID returns a fresh session id for a local URI: 96 bits from
// crypto/rand in lower-case hex. RFC 4975 §14.1 wants at least 80 bits so that
// the id cannot be guessed.
func NewSessionID() string { return randomHex(12) }

// NewTransactionID returns a fresh transaction id: 80 bits from crypto/rand,
// 20 lower-case hex characters (RFC 4975 §7.1 asks for at least 64 bits within
// the 4–32 characters an ident may have).
func NewTransactionID() string { return randomHex(10) }

// NewMessageID returns a fresh Message-ID, made like a transaction id.
func NewMessageID() string { return randomHex(10) }

func randomHex(n int) string {
	var raw [16]byte
	var out [32]byte
	rand.Read(raw[:n]) // never fails since Go 1.24; it aborts the program instead
	hex.Encode(out[:], raw[:n])
	return string(out[:2*n])
}

// cutPrefixFold is strings.CutPrefix with ASCII case folding.
func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return s, false
}

// Character classes of RFC 3986, RFC 3261 and RFC 4975 §9, as bit sets
// indexed by byte: the parser tests every header byte against them.
const (
	classAlnum uint8 = 1 << iota
	classToken
	classIdent
	classText // utf8text of RFC 4975 §9: HTAB, printable ASCII, any non-ASCII byte
)

var charClass = func() (t [256]uint8) {
	for c := range 256 {
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' {
			t[c] |= classAlnum | classToken | classIdent
		}
	}
	for _, c := range []byte("-.!%*_+`'~") {
		t[c] |= classToken
	}
	for _, c := range []byte(".-+%=") {
		t[c] |= classIdent
	}
	for c := range 256 {
		if c == '\t' || (c >= 0x20 && c != 0x7f) {
			t[c] |= classText
		}
	}
	return t
}()

func isAlnum(c byte) bool { return charClass[c]&classAlnum != 0 }

func isUnreserved(c byte) bool {
	return isAlnum(c) || c == '-' || c == '.' || c == '_' || c == '~'
}

func isSubDelim(c byte) bool {
	return strings.IndexByte("!$&'()*+,;=", c) >= 0
}

// validPctEncoded checks that each "%" is followed by two hex digits.
func validPctEncoded(s string, i int) bool {
	return i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2])
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// validRegName: host names and IPv4 addresses; ";" is excluded because it
// ends the authority in an MSRP URI.
func validRegName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case isUnreserved(c) || (isSubDelim(c) && c != ';'):
		case c == '%' && validPctEncoded(s, i):
		default:
			return false
		}
	}
	return true
}

func validUserinfo(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case isUnreserved(c) || (isSubDelim(c) && c != ';') || c == ':':
		case c == '%' && validPctEncoded(s, i):
		default:
			return false
		}
	}
	return s != ""
}

// validSessionID: session-id = 1*( unreserved / "+" / "=" / "/" ), RFC 4975 §9.
func validSessionID(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isUnreserved(c) && c != '+' && c != '=' && c != '/' {
			return false
		}
	}
	return true
}

// isToken: token of RFC 3261 §25.1, which RFC 4975 uses for transports and
// URI parameters.
func isToken[S byteString](s S) bool {
	if len(s) == 0 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isTokenChar(s[i]) {
			return false
		}
	}
	return true
}

func isTokenChar(c byte) bool { return charClass[c]&classToken != 0 }
