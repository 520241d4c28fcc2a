package cpim

import (
	"fmt"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Address is the value of the From, To and cc headers (RFC 3862 §4.1-§4.3)
// and of IMDN's Original-To, IMDN-Record-Route and IMDN-Route (RFC 5438
// §10):
//
//	[ Formal-name ] "<" URI ">"
//	Formal-name = 1*( Token SP ) / String
//
// Name is the display name, decoded (no quotes, no escapes); it may be
// empty. URI is the absolute URI between the angle brackets, for example
// "sip:alice@example.com" or "im:pooh@100akerwood.com".
type Address struct {
	Name string
	URI  string
}

// ParseAddress parses a From/To/cc style value: `"Display Name" <uri>`,
// `Display Name <uri>` or `<uri>`.
//
// A quoted name may contain the escapes of RFC 3862 §2.3 (\" \\ \uXXXX
// ...). An unquoted name is, by the grammar, a sequence of tokens each
// followed by one space; ParseAddress also accepts separators such as ','
// or '@' in it, as some clients send them, and joins the words with single
// spaces. The URI must be absolute (scheme ":" rest). Errors wrap
// ErrBadAddress.
func ParseAddress(s string) (Address, error) {
	s = strings.Trim(s, " ")
	var a Address
	if strings.HasPrefix(s, `"`) {
		raw, rest, ok := scanQuoted(s)
		if !ok {
			return Address{}, errorf(ErrBadAddress, "unterminated quoted name in %q", s)
		}
		a.Name = unescape(raw)
		s = strings.TrimLeft(rest, " ")
	} else {
		i := strings.IndexByte(s, '<')
		if i < 0 {
			return Address{}, errorf(ErrBadAddress, "no <URI> in %q", s)
		}
		name := s[:i]
		for j := 0; j < len(name); j++ {
			if c := name[j]; c == '"' || c == '\\' || c == '>' || isCTL(c) {
				return Address{}, errorf(ErrBadAddress, "character %q in unquoted name %q", c, name)
			}
		}
		a.Name = joinWords(name)
		s = s[i:]
	}
	if len(s) < 2 || s[0] != '<' || s[len(s)-1] != '>' {
		return Address{}, errorf(ErrBadAddress, "expected <URI>, got %q", s)
	}
	a.URI = s[1 : len(s)-1]
	if err := checkURI(a.URI); err != nil {
		return Address{}, err
	}
	return a, nil
}

// String formats a as `Name <uri>` when Name is a plain sequence of tokens
// (the RFC 3862 §3.6 Formal-name form), as `"Name" <uri>` with escapes
// otherwise, and as `<uri>` when Name is empty.
func (a Address) String() string {
	if a.Name == "" {
		return "<" + a.URI + ">"
	}
	if isTokenPhrase(a.Name) {
		return a.Name + " <" + a.URI + ">"
	}
	return quote(a.Name) + " <" + a.URI + ">"
}

// validate reports whether a can be written as a header value.
func (a Address) validate() error {
	if !utf8.ValidString(a.Name) {
		return errorf(ErrBadAddress, "display name is not UTF-8")
	}
	return checkURI(a.URI)
}

// checkURI accepts an absolute URI (RFC 3862 §3.6: absolute-URI): a scheme,
// a colon and at least one more character, with no space, control
// character, quote, backslash or angle bracket.
func checkURI(u string) error {
	colon := strings.IndexByte(u, ':')
	if colon < 1 || colon == len(u)-1 {
		return errorf(ErrBadAddress, "URI %q is not absolute", u)
	}
	for i := 0; i < colon; i++ {
		c := u[i]
		if !isAlpha(c) && (i == 0 || !(isDigit(c) || c == '+' || c == '-' || c == '.')) {
			return errorf(ErrBadAddress, "bad scheme in URI %q", u)
		}
	}
	for i := 0; i < len(u); i++ {
		if c := u[i]; c == ' ' || c == '<' || c == '>' || c == '"' || c == '\\' || isCTL(c) {
			return errorf(ErrBadAddress, "character %q in URI %q", c, u)
		}
	}
	if !utf8.ValidString(u) {
		return errorf(ErrBadAddress, "URI %q is not UTF-8", u)
	}
	return nil
}

// joinWords trims s and collapses runs of spaces to one.
func joinWords(s string) string {
	var b strings.Builder
	for _, w := range strings.Split(s, " ") {
		if w == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(w)
	}
	return b.String()
}

// isTokenPhrase reports whether s is 1*(Token SP) without the final space:
// tokens of TOKENCHAR separated by single spaces.
func isTokenPhrase(s string) bool {
	if s == "" || s[0] == ' ' || s[len(s)-1] == ' ' || strings.Contains(s, "  ") {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c != ' ' && !isTokenChar(c) {
			return false
		}
	}
	return utf8.ValidString(s)
}

// isNameChar is NAMECHAR of RFC 3862 §3.6: US-ASCII except ".", CTLs and
// SEPARATORS.
func isNameChar(c byte) bool {
	switch {
	case isAlpha(c), isDigit(c):
		return true
	case c == 0x21, c >= 0x23 && c <= 0x27, c == 0x2a, c == 0x2b, c == 0x2d,
		c >= 0x5e && c <= 0x60, c == 0x7c, c == 0x7e:
		return true
	}
	return false
}

// isTokenChar is TOKENCHAR of RFC 3862 §3.6 at the byte level: NAMECHAR, "."
// or a byte of a multi-byte UTF-8 sequence (UCS-high).
func isTokenChar(c byte) bool { return isNameChar(c) || c == '.' || c >= 0x80 }

func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// isCTL is CTL of RFC 2234: %x00-1F and %x7F.
func isCTL(c byte) bool { return c < 0x20 || c == 0x7f }

// isName reports whether s is Name (1*NAMECHAR).
func isName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isNameChar(s[i]) {
			return false
		}
	}
	return true
}

// isHeaderName reports whether s is Header-name: [ Name-prefix "." ] Name.
func isHeaderName(s string) bool {
	prefix, name, found := strings.Cut(s, ".")
	if !found {
		return isName(s)
	}
	return isName(prefix) && isName(name)
}

// isToken reports whether s is Token (1*TOKENCHAR) and valid UTF-8.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isTokenChar(s[i]) {
			return false
		}
	}
	return utf8.ValidString(s)
}

// scanQuoted reads a String (RFC 3862 §3.6) at the start of s, which begins
// with a double quote. It returns the text between the quotes, escapes
// still encoded, and what follows the closing quote.
func scanQuoted(s string) (raw, rest string, ok bool) {
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++ // the escaped character cannot close the string
		case '"':
			return s[1:i], s[i+1:], true
		}
	}
	return "", "", false
}

// unescape decodes the escape mechanism of RFC 3862 §2.3: \\ \" \' \b \t \n
// \r and \uXXXX (a UCS-2 code point; a surrogate pair is combined). As
// §2.3.1 recommends, an unrecognized escape stands for the character after
// the backslash, and a backslash at the very end is ignored.
func unescape(s string) string {
	if strings.IndexByte(s, '\\') < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		i++
		if i == len(s) {
			break
		}
		switch s[i] {
		case 'b':
			b.WriteByte('\b')
		case 't':
			b.WriteByte('\t')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 'u':
			r, n := decodeU(s[i+1:])
			if n == 0 {
				b.WriteByte('u')
				continue
			}
			b.WriteRune(r)
			i += n
		default:
			b.WriteByte(s[i]) // \\ \" \' and unrecognized escapes
		}
	}
	return b.String()
}

// decodeU decodes the four hex digits after "\u" at the start of s, and a
// following "\uXXXX" low surrogate if the first is a high surrogate. It
// returns the rune and the number of bytes consumed (0: not an escape).
func decodeU(s string) (rune, int) {
	v, ok := hex4(s)
	if !ok {
		return 0, 0
	}
	r := rune(v)
	if utf16.IsSurrogate(r) {
		if len(s) >= 10 && s[4] == '\\' && s[5] == 'u' {
			if lo, ok := hex4(s[6:]); ok {
				if pair := utf16.DecodeRune(r, rune(lo)); pair != utf8.RuneError {
					return pair, 10
				}
			}
		}
		return utf8.RuneError, 4
	}
	return r, 4
}

func hex4(s string) (uint16, bool) {
	if len(s) < 4 {
		return 0, false
	}
	var v uint16
	for i := 0; i < 4; i++ {
		c := s[i]
		switch {
		case isDigit(c):
			v = v<<4 | uint16(c-'0')
		case c >= 'a' && c <= 'f':
			v = v<<4 | uint16(c-'a'+10)
		case c >= 'A' && c <= 'F':
			v = v<<4 | uint16(c-'A'+10)
		default:
			return 0, false
		}
	}
	return v, true
}

// escape encodes s for a header (RFC 3862 §2.3.1): backslash, backspace,
// tab, linefeed and carriage return take their special sequences, other
// control characters \uXXXX; every other character, quotes included, is
// written as is. s must be valid UTF-8.
func escape(s string) string {
	return escapeWith(s, false)
}

// quote encodes s as a String: in double quotes, with escape's rules plus
// \" for a double quote (RFC 3862 §2.3.1).
func quote(s string) string {
	return `"` + escapeWith(s, true) + `"`
}

func escapeWith(s string, quoted bool) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\':
			b.WriteString(`\\`)
		case c == '"' && quoted:
			b.WriteString(`\"`)
		case c == '\b':
			b.WriteString(`\b`)
		case c == '\t':
			b.WriteString(`\t`)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\r':
			b.WriteString(`\r`)
		case isCTL(c):
			fmt.Fprintf(&b, `\u%04x`, c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
