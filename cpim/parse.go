package cpim

import (
	"bytes"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Default limits of a zero Parser.
const (
	DefaultMaxHeaderBytes = 16 << 10 // CPIM and MIME header blocks together
	DefaultMaxHeaders     = 128      // CPIM and MIME header lines together
	DefaultMaxXMLBytes    = 64 << 10 // an isComposing or IMDN document
	DefaultMaxXMLDepth    = 32       // element nesting in such a document
)

// Parser holds the limits applied to untrusted input. The zero value uses
// the defaults; a zero or negative field means its default.
type Parser struct {
	// MaxHeaderBytes bounds the bytes before the body (message headers,
	// MIME headers and the blank lines). Parse refuses a longer header
	// block with ErrHeaderTooLarge without scanning past the limit.
	MaxHeaderBytes int
	// MaxHeaders bounds the number of header lines (message and MIME);
	// more give ErrTooManyHeaders.
	MaxHeaders int
	// MaxXMLBytes bounds an XML document; a longer one gives
	// ErrXMLTooLarge before any decoding.
	MaxXMLBytes int
	// MaxXMLDepth bounds element nesting; deeper gives ErrXMLTooDeep.
	MaxXMLDepth int
}

func orDefault(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

// Parse parses a message/cpim message with the default limits. See
// Parser.Parse.
func Parse(b []byte) (*Message, error) { return Parser{}.Parse(b) }

// Parse parses a message/cpim message: the body of an MSRP SEND (or SIP
// MESSAGE) whose Content-Type is message/cpim.
//
// Lines end in CRLF; a bare LF is accepted too. Parse applies RFC 3862 and
// the rules RFC 4975 §13 sets for MSRP: From exactly once, To at least
// once, DateTime and Require at most once (a Subject at most once per
// language), a namespace prefix declared by NS before it is used (§3.4),
// header names compared case-sensitively (§2.2), no control characters in
// headers (§2.2), a Content-Type among the MIME headers (§2.4). Header
// values are UTF-8 and trailing spaces are dropped. The body is copied.
func (p Parser) Parse(b []byte) (*Message, error) {
	r := lineReader{b: b, limit: orDefault(p.MaxHeaderBytes, DefaultMaxHeaderBytes)}
	maxHeaders := orDefault(p.MaxHeaders, DefaultMaxHeaders)
	st := parseState{m: &Message{}}
	count := 0
	for {
		line, eof, err := r.next()
		if err != nil {
			return nil, err
		}
		if eof {
			if len(b) == 0 {
				return nil, errorf(ErrMalformed, "empty message")
			}
			return nil, lineErr(ErrMalformed, r.line, "message headers not followed by a blank line")
		}
		if len(line) == 0 {
			break
		}
		if count++; count > maxHeaders {
			return nil, errorf(ErrTooManyHeaders, "more than %d", maxHeaders)
		}
		if err := st.header(string(line), r.line); err != nil {
			return nil, err
		}
	}
	m := st.m
	if err := parseMIME(&r, m, count, maxHeaders); err != nil {
		return nil, err
	}
	if len(b) > r.off {
		m.Body = bytes.Clone(b[r.off:])
	}
	switch {
	case !st.seenFrom:
		return nil, errorf(ErrMissingHeader, "From")
	case len(m.To) == 0:
		return nil, errorf(ErrMissingHeader, "To")
	case m.ContentType == "":
		return nil, errorf(ErrMissingHeader, "Content-Type")
	}
	return m, nil
}

// parseMIME reads the MIME headers of the content (RFC 2045 style: names
// without regard to case, folded lines allowed) up to the blank line or the
// end of input.
func parseMIME(r *lineReader, m *Message, count, maxHeaders int) error {
	var fields []Field
	for {
		line, eof, err := r.next()
		if err != nil {
			return err
		}
		if len(line) == 0 {
			break
		}
		for _, c := range line {
			if isCTL(c) && c != '\t' {
				return lineErr(ErrMalformed, r.line, "control character %#x in MIME header", c)
			}
		}
		if line[0] == ' ' || line[0] == '\t' {
			if len(fields) == 0 {
				return lineErr(ErrMalformed, r.line, "continuation line without a header")
			}
			f := &fields[len(fields)-1]
			f.Value += string(line)
		} else {
			if count++; count > maxHeaders {
				return errorf(ErrTooManyHeaders, "more than %d", maxHeaders)
			}
			name, value, ok := strings.Cut(string(line), ":")
			if !ok || !isFieldName(name) {
				return lineErr(ErrMalformed, r.line, "bad MIME header %q", line)
			}
			fields = append(fields, Field{name, value})
		}
		if eof {
			break
		}
	}
	for _, f := range fields {
		f.Value = strings.Trim(f.Value, " \t")
		if !strings.EqualFold(f.Name, "Content-Type") {
			m.ContentHeaders = append(m.ContentHeaders, f)
			continue
		}
		if m.ContentType != "" {
			return errorf(ErrDuplicateHeader, "Content-Type")
		}
		if f.Value == "" {
			return errorf(ErrMissingHeader, "Content-Type is empty")
		}
		m.ContentType = f.Value
	}
	return nil
}

// lineReader splits the header blocks into lines, never looking past limit
// bytes from the start.
type lineReader struct {
	b     []byte
	off   int // start of the next line
	limit int // bytes the header blocks may occupy
	line  int // number of the line last returned, from 1
}

// next returns the next line without its LF or CRLF. eof reports that the
// line ended at the end of the input instead (possibly empty).
func (r *lineReader) next() (line []byte, eof bool, err error) {
	rest := r.b[r.off:]
	window := rest
	if room := r.limit - r.off; room < len(window) {
		window = rest[:max(room, 0)]
	}
	i := bytes.IndexByte(window, '\n')
	r.line++
	if i < 0 {
		if len(window) < len(rest) {
			return nil, false, errorf(ErrHeaderTooLarge, "more than %d bytes before the body", r.limit)
		}
		r.off = len(r.b)
		return rest, true, nil
	}
	line = rest[:i]
	r.off += i + 1
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, false, nil
}

// parseState tracks what the message headers seen so far have set.
type parseState struct {
	m                           *Message
	seenFrom, seenDate, seenReq bool
	seenUnprefixedExt           bool
}

// header parses one message header line (RFC 3862 §3.6):
//
//	Header = Header-name ":" *( ";" Parameter ) SP Header-value CRLF
func (st *parseState) header(line string, n int) error {
	if !utf8.ValidString(line) {
		return lineErr(ErrMalformed, n, "header is not UTF-8")
	}
	for i := 0; i < len(line); i++ {
		if isCTL(line[i]) {
			return lineErr(ErrMalformed, n, "control character %#x in header", line[i])
		}
	}
	line = strings.TrimRight(line, " ")
	name, rest, ok := strings.Cut(line, ":")
	if !ok {
		return lineErr(ErrMalformed, n, "no colon in %q", line)
	}
	if !isHeaderName(name) {
		return lineErr(ErrMalformed, n, "bad header name %q", name)
	}
	params, value, err := parseParams(rest)
	if err != nil {
		return lineErr(ErrMalformed, n, "%s: %v", name, err)
	}
	m := st.m
	ns, local, err := m.resolve(name)
	if err != nil {
		return lineErr(ErrUndeclaredPrefix, n, "%q used before its NS declaration", name)
	}
	if !sameNS(ns, NamespaceCPIM) || !isCoreHeader(local) {
		if !strings.Contains(name, ".") {
			st.seenUnprefixedExt = true
		}
		m.Headers = append(m.Headers, Header{Name: name, Params: params, Value: value})
		return nil
	}
	if local == "Subject" {
		return st.subject(params, value, n)
	}
	if len(params) > 0 {
		return lineErr(ErrMalformed, n, "%s takes no parameters", local)
	}
	switch local {
	case "From", "To", "cc":
		a, err := ParseAddress(value)
		if err != nil {
			return fmt.Errorf("%w (line %d, %s)", err, n, local)
		}
		switch local {
		case "From":
			if st.seenFrom {
				return lineErr(ErrDuplicateHeader, n, "From")
			}
			st.seenFrom = true
			m.From = a
		case "To":
			m.To = append(m.To, a)
		default:
			m.Cc = append(m.Cc, a)
		}
	case "DateTime":
		if st.seenDate {
			return lineErr(ErrDuplicateHeader, n, "DateTime")
		}
		st.seenDate = true
		t, err := time.Parse(time.RFC3339, strings.ToUpper(value))
		if err != nil {
			return lineErr(ErrBadDateTime, n, "%q: %v", value, err)
		}
		m.DateTime = t
	case "NS":
		return st.namespace(value, n)
	case "Require":
		if st.seenReq {
			return lineErr(ErrDuplicateHeader, n, "Require")
		}
		st.seenReq = true
		for _, r := range strings.Split(value, ",") {
			r = strings.Trim(r, " ")
			if !isHeaderName(r) {
				return lineErr(ErrMalformed, n, "Require: bad name %q", r)
			}
			m.Require = append(m.Require, r)
		}
	}
	return nil
}

// subject handles a Subject header (RFC 3862 §4.5): at most a lang
// parameter, and one header per language.
func (st *parseState) subject(params []Param, value string, n int) error {
	var s Subject
	for i, p := range params {
		if p.Name != "lang" || i > 0 || !isLangTag(p.Value) {
			return lineErr(ErrMalformed, n, "Subject: bad parameter %s=%s", p.Name, p.Value)
		}
		s.Lang = p.Value
	}
	for _, o := range st.m.Subject {
		if strings.EqualFold(o.Lang, s.Lang) {
			return lineErr(ErrDuplicateHeader, n, "Subject with language %q", s.Lang)
		}
	}
	s.Text = strings.TrimRight(unescape(value), " ")
	if !utf8.ValidString(s.Text) {
		s.Text = strings.ToValidUTF8(s.Text, "\uFFFD")
	}
	st.m.Subject = append(st.m.Subject, s)
	return nil
}

// namespace handles an NS header (RFC 3862 §4.6): [ Name-prefix ] "<" URI
// ">". A prefix may be declared again only with the same URI.
func (st *parseState) namespace(value string, n int) error {
	prefix, uri, ok := strings.Cut(value, "<")
	prefix = strings.Trim(prefix, " ")
	if !ok || !strings.HasSuffix(uri, ">") || (prefix != "" && !isName(prefix)) {
		return lineErr(ErrBadAddress, n, "NS: expected [prefix] <URI>, got %q", value)
	}
	uri = strings.TrimSuffix(uri, ">")
	if err := checkNSURI(uri); err != nil {
		return fmt.Errorf("%w (line %d)", err, n)
	}
	m := st.m
	if prefix == "" && st.seenUnprefixedExt {
		// Marshal writes every extension header after the NS
		// declarations, which would move earlier unprefixed headers
		// into the new default namespace.
		return lineErr(ErrMalformed, n, "default namespace redeclared after unprefixed extension headers")
	}
	if old, ok := m.NS[prefix]; ok {
		if !sameNS(old, uri) {
			return lineErr(ErrDuplicateHeader, n, "NS prefix %q bound to %q and %q", prefix, old, uri)
		}
		return nil
	}
	if m.NS == nil {
		m.NS = make(map[string]string)
	}
	m.NS[prefix] = uri
	return nil
}

// parseParams reads *( ";" Parameter ) SP after a header's colon and
// returns the parameters and the value. The SP may be missing when there
// are no parameters.
func parseParams(s string) ([]Param, string, error) {
	var params []Param
	for strings.HasPrefix(s, ";") {
		pname, rest, ok := strings.Cut(s[1:], "=")
		if !ok || !isName(pname) {
			return nil, "", errorf(ErrMalformed, "bad parameter in %q", s)
		}
		var pval string
		if strings.HasPrefix(rest, `"`) {
			_, after, ok := scanQuoted(rest)
			if !ok {
				return nil, "", errorf(ErrMalformed, "unterminated parameter string in %q", s)
			}
			pval = rest[:len(rest)-len(after)]
		} else {
			i := 0
			for i < len(rest) && isTokenChar(rest[i]) {
				i++
			}
			pval = rest[:i]
			if pval == "" {
				return nil, "", errorf(ErrMalformed, "empty parameter %s", pname)
			}
		}
		params = append(params, Param{pname, pval})
		s = rest[len(pval):]
	}
	switch {
	case strings.HasPrefix(s, " "):
		s = s[1:]
	case len(params) > 0 && s != "":
		return nil, "", errorf(ErrMalformed, "no space after parameters in %q", s)
	}
	return params, s, nil
}
