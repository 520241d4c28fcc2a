package cpim

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Media types and namespace URIs.
const (
	// ContentTypeCPIM is the media type of a Message (RFC 3862 §7.1).
	ContentTypeCPIM = "message/cpim"
	// ContentTypeIsComposing is the media type of an IsComposing document
	// (RFC 3994 §8.1).
	ContentTypeIsComposing = "application/im-iscomposing+xml"
	// ContentTypeIMDN is the media type of an IMDN document (RFC 5438
	// §11.1.8).
	ContentTypeIMDN = "message/imdn+xml"

	// NamespaceCPIM is the namespace of the headers RFC 3862 defines (§4),
	// the default namespace of a message/cpim message.
	NamespaceCPIM = "urn:ietf:params:cpim-headers:"
	// NamespaceIMDN is the namespace of the CPIM headers RFC 5438 defines
	// (§6.1): Message-ID, Disposition-Notification, Original-To,
	// IMDN-Record-Route, IMDN-Route.
	NamespaceIMDN = "urn:ietf:params:imdn"
)

// Message is a message/cpim message (RFC 3862): message headers, then the
// MIME headers and body of the encapsulated content.
//
// The headers RFC 3862 §4 defines have fields of their own; every other
// message header, such as IMDN's imdn.Message-ID, is in Headers.
//
// Marshal writes the headers in a fixed order: From, To, cc, DateTime,
// Subject, the prefixed NS declarations, Require, a default namespace
// declaration, then Headers in order. Parse followed by Marshal therefore
// keeps the meaning of a message but not necessarily its bytes; a gateway
// that must forward a message unchanged (RFC 3862 §6) should forward the
// bytes it received.
type Message struct {
	// From is the sender (RFC 3862 §4.1). It must be present, once.
	From Address
	// To lists the recipients (§4.2); at least one is required.
	To []Address
	// Cc lists courtesy-copy recipients (§4.3, header "cc").
	Cc []Address
	// DateTime is when the message was sent (§4.4), written in RFC 3339
	// form with the time's own offset; the zero Time means no header.
	DateTime time.Time
	// Subject holds the Subject headers (§4.5), one per language.
	Subject []Subject
	// NS maps namespace prefixes to namespace URIs (§3.4, §4.6). The
	// empty prefix, if present, redeclares the default namespace.
	NS map[string]string
	// Require lists the header names or features the receiver must
	// understand (§3.5, §4.7).
	Require []string
	// Headers holds the other message headers, in order.
	Headers []Header

	// ContentType is the media type of Body, with parameters: the
	// Content-Type MIME header, which RFC 3862 §2.4 requires.
	ContentType string
	// ContentHeaders holds the other MIME headers of the content, such as
	// Content-ID or Content-Disposition, in order.
	ContentHeaders []Field
	// Body is the encapsulated content, after the MIME headers.
	Body []byte
}

// Header is a message header other than those RFC 3862 §4 defines.
type Header struct {
	// Name is the header name as written: "prefix.Name" for a header of a
	// namespace declared with NS, or "Name" for the default namespace.
	Name string
	// Params holds the parameters written between the colon and the value
	// (RFC 3862 §3.6), rarely used.
	Params []Param
	// Value is the header value as it travels: RFC 3862 §2.3 escapes are
	// not decoded, because their meaning depends on the value's syntax
	// (quoted strings). Unescape decodes a plain text value.
	Value string
}

// Param is a header parameter (RFC 3862 §3.6): Name "=" Value, where Value
// is a Token, a Number or a quoted String as written.
type Param struct {
	Name  string
	Value string
}

// Subject is a Subject header (RFC 3862 §4.5): Text in language Lang (an
// RFC 3066 tag, empty for none).
type Subject struct {
	Lang string
	Text string
}

// Field is a MIME header of the encapsulated content (RFC 3862 §2.4).
type Field struct {
	Name  string
	Value string
}

// Wrap returns a message from from to to carrying body of type contentType,
// dated now (to the second).
func Wrap(from, to Address, contentType string, body []byte) *Message {
	return &Message{
		From:        from,
		To:          []Address{to},
		DateTime:    time.Now().Truncate(time.Second),
		ContentType: contentType,
		Body:        body,
	}
}

// Unescape decodes the escape mechanism of RFC 3862 §2.3 in a header value
// that is plain text (no quoted strings), such as a Header.Value.
func Unescape(s string) string { return unescape(s) }

// Escape encodes text for a header value (RFC 3862 §2.3.1): backslashes and
// control characters are escaped, everything else is kept.
func Escape(s string) string { return escape(s) }

var crlf = []byte("\r\n")

// Marshal encodes m: message headers, a blank line, the MIME headers, a
// blank line and the body, lines ending in CRLF. It returns an error
// (wrapping ErrMissingHeader, ErrBadAddress, ErrMalformed, ...) if m lacks
// From, To or ContentType or holds a value that cannot be written.
func (m *Message) Marshal() ([]byte, error) {
	var b bytes.Buffer
	if m.From.URI == "" {
		return nil, errorf(ErrMissingHeader, "From")
	}
	if len(m.To) == 0 {
		return nil, errorf(ErrMissingHeader, "To")
	}
	if err := writeAddr(&b, "From", m.From); err != nil {
		return nil, err
	}
	for _, a := range m.To {
		if err := writeAddr(&b, "To", a); err != nil {
			return nil, err
		}
	}
	for _, a := range m.Cc {
		if err := writeAddr(&b, "cc", a); err != nil {
			return nil, err
		}
	}
	if !m.DateTime.IsZero() {
		if y := m.DateTime.Year(); y < 0 || y > 9999 {
			return nil, errorf(ErrBadDateTime, "year %d out of RFC 3339 range", y)
		}
		b.WriteString("DateTime: " + rfc3339(m.DateTime))
		b.Write(crlf)
	}
	if err := m.writeSubjects(&b); err != nil {
		return nil, err
	}
	if err := m.writeNamespaces(&b); err != nil {
		return nil, err
	}
	if err := m.writeHeaders(&b); err != nil {
		return nil, err
	}
	b.Write(crlf)
	if m.ContentType == "" {
		return nil, errorf(ErrMissingHeader, "Content-Type")
	}
	if err := writeField(&b, Field{"Content-Type", m.ContentType}); err != nil {
		return nil, err
	}
	for _, f := range m.ContentHeaders {
		if strings.EqualFold(f.Name, "Content-Type") {
			return nil, errorf(ErrDuplicateHeader, "Content-Type in ContentHeaders")
		}
		if err := writeField(&b, f); err != nil {
			return nil, err
		}
	}
	b.Write(crlf)
	b.Write(m.Body)
	return b.Bytes(), nil
}

func writeAddr(b *bytes.Buffer, name string, a Address) error {
	if err := a.validate(); err != nil {
		return fmt.Errorf("%w (%s)", err, name)
	}
	b.WriteString(name + ": " + a.String())
	b.Write(crlf)
	return nil
}

func (m *Message) writeSubjects(b *bytes.Buffer) error {
	for i, s := range m.Subject {
		if s.Lang != "" && !isLangTag(s.Lang) {
			return errorf(ErrMalformed, "Subject: bad language tag %q", s.Lang)
		}
		for _, o := range m.Subject[:i] {
			if strings.EqualFold(o.Lang, s.Lang) {
				return errorf(ErrDuplicateHeader, "Subject with language %q", s.Lang)
			}
		}
		if !utf8.ValidString(s.Text) || strings.HasSuffix(s.Text, " ") {
			return errorf(ErrMalformed, "Subject: text is not UTF-8 or ends in a space")
		}
		b.WriteString("Subject:")
		if s.Lang != "" {
			b.WriteString(";lang=" + s.Lang)
		}
		if s.Text != "" {
			b.WriteString(" " + escape(s.Text))
		}
		b.Write(crlf)
	}
	return nil
}

func (m *Message) writeNamespaces(b *bytes.Buffer) error {
	prefixes := make([]string, 0, len(m.NS))
	for p, uri := range m.NS {
		if p != "" && !isName(p) {
			return errorf(ErrMalformed, "NS: bad prefix %q", p)
		}
		if err := checkNSURI(uri); err != nil {
			return err
		}
		if p != "" {
			prefixes = append(prefixes, p)
		}
	}
	slices.Sort(prefixes)
	for _, p := range prefixes {
		b.WriteString("NS: " + p + " <" + m.NS[p] + ">")
		b.Write(crlf)
	}
	if len(m.Require) > 0 {
		for _, r := range m.Require {
			if !isHeaderName(r) {
				return errorf(ErrMalformed, "Require: bad name %q", r)
			}
		}
		b.WriteString("Require: " + strings.Join(m.Require, ","))
		b.Write(crlf)
	}
	if uri, ok := m.NS[""]; ok {
		b.WriteString("NS: <" + uri + ">")
		b.Write(crlf)
	}
	return nil
}

func (m *Message) writeHeaders(b *bytes.Buffer) error {
	for _, h := range m.Headers {
		if !isHeaderName(h.Name) {
			return errorf(ErrMalformed, "bad header name %q", h.Name)
		}
		ns, local, err := m.resolve(h.Name)
		if err != nil {
			return err
		}
		if sameNS(ns, NamespaceCPIM) && isCoreHeader(local) {
			return errorf(ErrMalformed, "header %q belongs in its Message field", h.Name)
		}
		b.WriteString(h.Name + ":")
		for _, p := range h.Params {
			if !isName(p.Name) || !isParamValue(p.Value) {
				return errorf(ErrMalformed, "%s: bad parameter %q=%q", h.Name, p.Name, p.Value)
			}
			b.WriteString(";" + p.Name + "=" + p.Value)
		}
		if err := checkRawValue(h.Value); err != nil {
			return fmt.Errorf("%w (%s)", err, h.Name)
		}
		if h.Value != "" {
			b.WriteString(" " + h.Value)
		}
		b.Write(crlf)
	}
	return nil
}

func writeField(b *bytes.Buffer, f Field) error {
	if !isFieldName(f.Name) {
		return errorf(ErrMalformed, "bad MIME header name %q", f.Name)
	}
	for i := 0; i < len(f.Value); i++ {
		if c := f.Value[i]; isCTL(c) && c != '\t' {
			return errorf(ErrMalformed, "%s: control character %#x", f.Name, c)
		}
	}
	b.WriteString(f.Name + ": " + f.Value)
	b.Write(crlf)
	return nil
}

// checkRawValue accepts a header value that can be written as is: UTF-8,
// no control characters, no trailing space (RFC 3862 §2.2).
func checkRawValue(v string) error {
	for i := 0; i < len(v); i++ {
		if isCTL(v[i]) {
			return errorf(ErrMalformed, "control character %#x in value (use Escape)", v[i])
		}
	}
	if !utf8.ValidString(v) {
		return errorf(ErrMalformed, "value is not UTF-8")
	}
	if strings.HasSuffix(v, " ") {
		return errorf(ErrMalformed, "value ends in a space")
	}
	return nil
}

// checkNSURI accepts a namespace URI: absolute, without a fragment (RFC
// 3862 §3.4).
func checkNSURI(uri string) error {
	if err := checkURI(uri); err != nil {
		return fmt.Errorf("%w (NS)", err)
	}
	if strings.Contains(uri, "#") {
		return errorf(ErrBadAddress, "NS: URI %q has a fragment", uri)
	}
	return nil
}

// isParamValue reports whether v is Token / Number / String (RFC 3862 §3.6).
func isParamValue(v string) bool {
	if strings.HasPrefix(v, `"`) {
		_, rest, ok := scanQuoted(v)
		return ok && rest == "" && checkRawValue(v) == nil
	}
	return isToken(v)
}

// isFieldName reports whether s is a MIME header name: printable US-ASCII
// except the colon (RFC 5322 §3.6.8).
func isFieldName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == ':' {
			return false
		}
	}
	return true
}

// isLangTag reports whether s is an RFC 3066 Language-Tag:
// 1*8ALPHA *("-" 1*8(ALPHA / DIGIT)).
func isLangTag(s string) bool {
	for i, part := range strings.Split(s, "-") {
		if len(part) < 1 || len(part) > 8 {
			return false
		}
		for j := 0; j < len(part); j++ {
			if c := part[j]; !isAlpha(c) && (i == 0 || !isDigit(c)) {
				return false
			}
		}
	}
	return true
}

// isCoreHeader reports whether name is a header RFC 3862 §4 defines.
func isCoreHeader(name string) bool {
	switch name {
	case "From", "To", "cc", "DateTime", "Subject", "NS", "Require":
		return true
	}
	return false
}

// sameNS compares namespace URIs, ignoring case (they are URNs in
// practice, and urn:ietf:params names are case-insensitive).
func sameNS(a, b string) bool { return strings.EqualFold(a, b) }

// resolve splits a header name into its namespace URI and local name using
// m.NS (RFC 3862 §3.4).
func (m *Message) resolve(name string) (ns, local string, err error) {
	prefix, local, found := strings.Cut(name, ".")
	if !found {
		if uri, ok := m.NS[""]; ok {
			return uri, name, nil
		}
		return NamespaceCPIM, name, nil
	}
	uri, ok := m.NS[prefix]
	if !ok || prefix == "" {
		return "", "", errorf(ErrUndeclaredPrefix, "%q in %q", prefix, name)
	}
	return uri, local, nil
}

// GetAll returns the values of the extension headers named name in
// namespace ns, whatever prefix the message binds to ns, in order.
func (m *Message) GetAll(ns, name string) []string {
	var vals []string
	for _, h := range m.Headers {
		if hns, local, err := m.resolve(h.Name); err == nil && local == name && sameNS(hns, ns) {
			vals = append(vals, h.Value)
		}
	}
	return vals
}

// Get returns the value of the first extension header named name in
// namespace ns.
func (m *Message) Get(ns, name string) (string, bool) {
	if vals := m.GetAll(ns, name); len(vals) > 0 {
		return vals[0], true
	}
	return "", false
}

// Add appends an extension header name in namespace ns with value (as it
// travels; see Escape), declaring a prefix for ns in NS if the message has
// none ("imdn" for NamespaceIMDN, otherwise "ns", "ns2", ...).
func (m *Message) Add(ns, name, value string) {
	m.Headers = append(m.Headers, Header{Name: m.prefixFor(ns) + "." + name, Value: value})
}

// Set replaces the extension headers name in namespace ns by one with
// value.
func (m *Message) Set(ns, name, value string) {
	m.Del(ns, name)
	m.Add(ns, name, value)
}

// Del removes the extension headers named name in namespace ns.
func (m *Message) Del(ns, name string) {
	m.Headers = slices.DeleteFunc(m.Headers, func(h Header) bool {
		hns, local, err := m.resolve(h.Name)
		return err == nil && local == name && sameNS(hns, ns)
	})
}

// prefixFor returns a prefix bound to ns in m.NS, binding one if needed.
func (m *Message) prefixFor(ns string) string {
	var found []string
	for p, uri := range m.NS {
		if p != "" && sameNS(uri, ns) {
			found = append(found, p)
		}
	}
	if len(found) > 0 {
		return slices.Min(found)
	}
	base := "ns"
	if sameNS(ns, NamespaceIMDN) {
		base = "imdn"
	}
	p := base
	for i := 2; ; i++ {
		if _, taken := m.NS[p]; !taken {
			break
		}
		p = base + strconv.Itoa(i)
	}
	if m.NS == nil {
		m.NS = make(map[string]string)
	}
	m.NS[p] = ns
	return p
}

// ContentHeader returns the value of the MIME header name (compared without
// regard to case), including Content-Type.
func (m *Message) ContentHeader(name string) (string, bool) {
	if strings.EqualFold(name, "Content-Type") {
		return m.ContentType, m.ContentType != ""
	}
	for _, f := range m.ContentHeaders {
		if strings.EqualFold(f.Name, name) {
			return f.Value, true
		}
	}
	return "", false
}

// SetContentHeader sets the MIME header name to value, replacing any
// header of that name (Content-Type sets ContentType).
func (m *Message) SetContentHeader(name, value string) {
	if strings.EqualFold(name, "Content-Type") {
		m.ContentType = value
		return
	}
	m.ContentHeaders = slices.DeleteFunc(m.ContentHeaders, func(f Field) bool {
		return strings.EqualFold(f.Name, name)
	})
	m.ContentHeaders = append(m.ContentHeaders, Field{name, value})
}
