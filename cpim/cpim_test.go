package cpim

import (
	"bytes"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// crlfJoin joins lines with CRLF.
func crlfJoin(lines ...string) []byte {
	return []byte(strings.Join(lines, "\r\n"))
}

// rfc3862Example is the message of RFC 3862 §5.1 without the "m:" line
// (that Content-Type belongs to the carrying protocol) and without the
// per-line tags.
var rfc3862Example = crlfJoin(
	"From: MR SANDERS <im:piglet@100akerwood.com>",
	"To: Depressed Donkey <im:eeyore@100akerwood.com>",
	"DateTime: 2000-12-13T13:40:00-08:00",
	"Subject: the weather will be fine today",
	"Subject:;lang=fr beau temps prevu pour aujourd'hui",
	"NS: MyFeatures <mid:MessageFeatures@id.foo.com>",
	"Require: MyFeatures.VitalMessageOption",
	"MyFeatures.VitalMessageOption: Confirmation-requested",
	"MyFeatures.WackyMessageOption: Use-silly-font",
	"",
	"Content-type: text/xml; charset=utf-8",
	"Content-ID: <1234567890@foo.com>",
	"",
	"<body>",
	"Here is the text of my message.",
	"</body>",
)

func TestParseRFC3862Example(t *testing.T) {
	m, err := Parse(rfc3862Example)
	require.NoError(t, err)
	assert.Equal(t, Address{"MR SANDERS", "im:piglet@100akerwood.com"}, m.From)
	assert.Equal(t, []Address{{"Depressed Donkey", "im:eeyore@100akerwood.com"}}, m.To)
	assert.True(t, m.DateTime.Equal(time.Date(2000, 12, 13, 21, 40, 0, 0, time.UTC)))
	_, off := m.DateTime.Zone()
	assert.Equal(t, -8*3600, off)
	assert.Equal(t, []Subject{
		{"", "the weather will be fine today"},
		{"fr", "beau temps prevu pour aujourd'hui"},
	}, m.Subject)
	assert.Equal(t, map[string]string{"MyFeatures": "mid:MessageFeatures@id.foo.com"}, m.NS)
	assert.Equal(t, []string{"MyFeatures.VitalMessageOption"}, m.Require)
	assert.Equal(t, []Header{
		{Name: "MyFeatures.VitalMessageOption", Value: "Confirmation-requested"},
		{Name: "MyFeatures.WackyMessageOption", Value: "Use-silly-font"},
	}, m.Headers)
	v, ok := m.Get("mid:MessageFeatures@id.foo.com", "WackyMessageOption")
	assert.True(t, ok)
	assert.Equal(t, "Use-silly-font", v)
	assert.Equal(t, "text/xml; charset=utf-8", m.ContentType)
	assert.Equal(t, []Field{{"Content-ID", "<1234567890@foo.com>"}}, m.ContentHeaders)
	assert.Equal(t, "<body>\r\nHere is the text of my message.\r\n</body>", string(m.Body))

	// Marshal writes the headers in the order of the example itself.
	out, err := m.Marshal()
	require.NoError(t, err)
	want := bytes.Replace(rfc3862Example, []byte("Content-type"), []byte("Content-Type"), 1)
	assert.Equal(t, string(want), string(out))
}

// TestRFC3862HeaderExamples parses the single-header examples of RFC 3862
// §2.2, §3.3, §4.1-§4.5.
func TestRFC3862HeaderExamples(t *testing.T) {
	m, err := Parse(crlfJoin(
		"To: Pooh Bear <im:pooh@100akerwood.com>",
		"From: <im:piglet@100akerwood.com>",
		"DateTime: 2001-02-02T10:48:54-05:00",
		"cc: Winnie the Pooh <im:pooh@100akerwood.com>",
		"cc: <im:tigger@100akerwood.com>",
		"Subject:;lang=en Eeyore's feeling very depressed today",
		"Subject:;lang=fr Objet de message",
		"", "Content-Type: text/plain", "", ""))
	require.NoError(t, err)
	assert.Equal(t, Address{"", "im:piglet@100akerwood.com"}, m.From)
	assert.Equal(t, []Address{{"Pooh Bear", "im:pooh@100akerwood.com"}}, m.To)
	assert.Equal(t, []Address{{"Winnie the Pooh", "im:pooh@100akerwood.com"}, {"", "im:tigger@100akerwood.com"}}, m.Cc)
	assert.Equal(t, "2001-02-02T10:48:54-05:00", m.DateTime.Format(time.RFC3339))
	assert.Equal(t, []Subject{{"en", "Eeyore's feeling very depressed today"}, {"fr", "Objet de message"}}, m.Subject)
	assert.Nil(t, m.Body)
}

// TestNamespaceForms checks RFC 3862 §3.4: three spellings of one header in
// one namespace mean the same.
func TestNamespaceForms(t *testing.T) {
	const ns = "http://id.acme.widgets/wily-headers/"
	for _, hdr := range [][]string{
		{"NS: acme <" + ns + ">", "acme.runner-trap: set"},
		{"NS: widget <" + ns + ">", "widget.runner-trap: set"},
		{"NS: <" + ns + ">", "runner-trap: set"},
	} {
		lines := append([]string{"From: <im:a@example.com>", "To: <im:b@example.com>"}, hdr...)
		lines = append(lines, "", "Content-Type: text/plain", "", "hi")
		m, err := Parse(crlfJoin(lines...))
		require.NoError(t, err, hdr)
		v, ok := m.Get(ns, "runner-trap")
		assert.True(t, ok, hdr)
		assert.Equal(t, "set", v, hdr)
		assert.Empty(t, m.GetAll(NamespaceCPIM, "runner-trap"), hdr)
		roundTrip(t, m)
	}
}

func TestDefaultNamespaceRedeclared(t *testing.T) {
	// After "NS: <x>", an unprefixed "From" is a header of x, not CPIM's.
	m, err := Parse(crlfJoin(
		"From: <im:a@example.com>", "To: <im:b@example.com>",
		"NS: <urn:x>", "From: other", "NS: not a declaration",
		"", "Content-Type: text/plain", "", ""))
	require.NoError(t, err)
	assert.Equal(t, "im:a@example.com", m.From.URI)
	assert.Equal(t, []string{"other"}, m.GetAll("urn:x", "From"))
	assert.Equal(t, []string{"not a declaration"}, m.GetAll("urn:x", "NS"))
	out := roundTrip(t, m)
	assert.Contains(t, string(out), "NS: <urn:x>\r\nFrom: other\r\n")

	// A prefix bound to the CPIM namespace reaches the core headers.
	m, err = Parse(crlfJoin(
		"NS: c <urn:ietf:params:cpim-headers:>", "c.From: <im:a@example.com>", "c.To: <im:b@example.com>",
		"", "Content-Type: text/plain", "", ""))
	require.NoError(t, err)
	assert.Equal(t, "im:a@example.com", m.From.URI)
	assert.Len(t, m.To, 1)
}

func TestBareLF(t *testing.T) {
	m, err := Parse([]byte("From: <sip:a@example.com>\nTo: <sip:b@example.com>\n\nContent-Type: text/plain\n\nline1\nline2\n"))
	require.NoError(t, err)
	assert.Equal(t, "line1\nline2\n", string(m.Body))
	// The body is kept byte for byte, CRs included.
	m, err = Parse([]byte("From: <sip:a@example.com>\r\nTo: <sip:b@example.com>\n\r\nContent-Type: text/plain\n\nx\r\ny"))
	require.NoError(t, err)
	assert.Equal(t, "x\r\ny", string(m.Body))
}

func TestMIMEHeaders(t *testing.T) {
	m, err := Parse(crlfJoin(
		"From: <im:a@example.com>", "To: <im:b@example.com>", "",
		"content-type:text/plain;", "\tcharset=utf-8", "Content-Disposition: notification", "X-Empty:", "", "body"))
	require.NoError(t, err)
	assert.Equal(t, "text/plain;\tcharset=utf-8", m.ContentType)
	v, ok := m.ContentHeader("content-disposition")
	assert.True(t, ok)
	assert.Equal(t, "notification", v)
	v, ok = m.ContentHeader("X-Empty")
	assert.True(t, ok)
	assert.Equal(t, "", v)
	_, ok = m.ContentHeader("Content-ID")
	assert.False(t, ok)

	// MIME headers ending at the end of input: empty body.
	m, err = Parse([]byte("From: <im:a@example.com>\r\nTo: <im:b@example.com>\r\n\r\nContent-Type: text/plain"))
	require.NoError(t, err)
	assert.Equal(t, "text/plain", m.ContentType)
	assert.Nil(t, m.Body)

	m.SetContentHeader("Content-ID", "<1@x>")
	m.SetContentHeader("content-id", "<2@x>")
	m.SetContentHeader("Content-Type", "text/html")
	assert.Equal(t, []Field{{"content-id", "<2@x>"}}, m.ContentHeaders)
	assert.Equal(t, "text/html", m.ContentType)
}

func TestEscapes(t *testing.T) {
	m := Wrap(Address{`Dr. "Quote" \ Backslash`, "sip:q@example.com"},
		Address{"Tab\tName", "sip:t@example.com"}, "text/plain", []byte("x"))
	m.Subject = []Subject{{"", "line1\nline2\ttab \\ \"q\" 'q' \x00\x7f é 😀"}}
	out, err := m.Marshal()
	require.NoError(t, err)
	s := string(out)
	assert.Contains(t, s, `From: "Dr. \"Quote\" \\ Backslash" <sip:q@example.com>`+"\r\n")
	assert.Contains(t, s, `To: "Tab\tName" <sip:t@example.com>`+"\r\n")
	assert.Contains(t, s, `Subject: line1\nline2\ttab \\ "q" 'q' \u0000\u007f é 😀`+"\r\n")
	m2 := roundTrip(t, m)
	_ = m2
	back, err := Parse(out)
	require.NoError(t, err)
	assert.Equal(t, m.From, back.From)
	assert.Equal(t, m.To, back.To)
	assert.Equal(t, m.Subject, back.Subject)

	for in, want := range map[string]string{
		`a\u00e9b`:              "aéb",
		`\uD83D\uDE00`:          "😀",
		`\uD83D`:                "\uFFFD",
		`\uDE00x`:               "\uFFFDx",
		`\uzzzz`:                "uzzzz",
		`\q`:                    "q",
		`trailing\`:             "trailing",
		`\'\"\\\b\r`:            "'\"\\\b\r",
		`no escapes`:            "no escapes",
		`\u004`:                 "u004",
		`\uD83D\u0041`:          "\uFFFDA",
		`\uD83D\uD83D\uDE00`:    "\uFFFD😀",
		`\u00e9\u00E9`:          "éé",
		`end\u`:                 "endu",
		`mixed \t and "quotes"`: "mixed \t and \"quotes\"",
	} {
		assert.Equal(t, want, Unescape(in), in)
	}
	assert.Equal(t, `a\\b\u001b`, Escape("a\\b\x1b"))
}

func TestAddress(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Address
		out  string
	}{
		{`<im:x@y>`, Address{"", "im:x@y"}, `<im:x@y>`},
		{`Winnie the Pooh <im:pooh@100akerwood.com>`, Address{"Winnie the Pooh", "im:pooh@100akerwood.com"}, `Winnie the Pooh <im:pooh@100akerwood.com>`},
		{`"Winnie the Pooh" <im:pooh@100akerwood.com>`, Address{"Winnie the Pooh", "im:pooh@100akerwood.com"}, `Winnie the Pooh <im:pooh@100akerwood.com>`},
		{`"Doe, John"<sip:j@x>`, Address{"Doe, John", "sip:j@x"}, `"Doe, John" <sip:j@x>`},
		{`Doe, John <sip:j@x>`, Address{"Doe, John", "sip:j@x"}, `"Doe, John" <sip:j@x>`},
		{`  spaced   out   <sip:s@x>  `, Address{"spaced out", "sip:s@x"}, `spaced out <sip:s@x>`},
		{`"" <sip:e@x>`, Address{"", "sip:e@x"}, `<sip:e@x>`},
		{`" lead" <sip:e@x>`, Address{" lead", "sip:e@x"}, `" lead" <sip:e@x>`},
		{`Jürgen Groß <sip:jg@x>`, Address{"Jürgen Groß", "sip:jg@x"}, `Jürgen Groß <sip:jg@x>`},
		{`"a\"b\\c" <tel:+1-555>`, Address{`a"b\c`, "tel:+1-555"}, `"a\"b\\c" <tel:+1-555>`},
		{`O'Brien <sip:ob@x>`, Address{"O'Brien", "sip:ob@x"}, `O'Brien <sip:ob@x>`},
		{`alice@example <sip:a@x>`, Address{"alice@example", "sip:a@x"}, `"alice@example" <sip:a@x>`},
	} {
		a, err := ParseAddress(tc.in)
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.want, a, tc.in)
		assert.Equal(t, tc.out, a.String(), tc.in)
		back, err := ParseAddress(a.String())
		require.NoError(t, err, tc.in)
		assert.Equal(t, a, back, tc.in)
	}
	for _, in := range []string{
		``, `alice`, `"unterminated <sip:a@x>`, `<sip:a@x`, `sip:a@x>`, `<>`, `<nocolon>`,
		`<:x>`, `<1sip:x>`, `<sip:>`, `<sip:a b>`, `<sip:a"b>`, `<sip:a\b>`, `Name <sip:x> trailing`,
		`Na"me <sip:x>`, `Na\me <sip:x>`, `a>b <sip:x>`, `<sip:x><sip:y>`, "Tab\tName <sip:x>",
		"<sip:\xff>", `"q" junk <sip:x>`,
	} {
		_, err := ParseAddress(in)
		assert.ErrorIs(t, err, ErrBadAddress, in)
	}
}

// roundTrip marshals m, parses the result, and checks that marshalling
// again gives the same bytes. It returns the first encoding.
func roundTrip(t *testing.T, m *Message) []byte {
	t.Helper()
	out, err := m.Marshal()
	require.NoError(t, err)
	m2, err := Parser{MaxHeaderBytes: 1 << 20}.Parse(out)
	require.NoError(t, err, "%s", out)
	out2, err := m2.Marshal()
	require.NoError(t, err)
	require.Equal(t, string(out), string(out2))
	return out
}

func TestWrapRoundTrip(t *testing.T) {
	m := Wrap(Address{"Alice", "sip:alice@example.com"}, Address{"Bob", "sip:bob@example.com"}, "text/plain;charset=utf-8", []byte("Hello\r\n\r\nworld"))
	assert.False(t, m.DateTime.IsZero())
	assert.Equal(t, 0, m.DateTime.Nanosecond())
	m.To = append(m.To, Address{"", "sip:carol@example.com"})
	m.Cc = []Address{{"Dave", "sip:dave@example.com"}}
	m.Subject = []Subject{{"", "hi"}, {"de-DE", "Hallo"}, {"en", ""}}
	m.Require = []string{"x.Feature", "Other"}
	m.Headers = []Header{{Name: "x.Feature", Params: []Param{{"p", "1"}, {"q", `"a b"`}}, Value: "on"}, {Name: "Custom", Value: ""}}
	m.NS = map[string]string{"x": "urn:example:x"}
	m.ContentHeaders = []Field{{"Content-ID", "<1@x>"}}
	out := roundTrip(t, m)
	back, err := Parse(out)
	require.NoError(t, err)
	assert.Equal(t, m.To, back.To)
	assert.Equal(t, m.Cc, back.Cc)
	assert.Equal(t, m.Subject, back.Subject)
	assert.Equal(t, m.Require, back.Require)
	assert.Equal(t, m.Headers, back.Headers)
	assert.Equal(t, m.NS, back.NS)
	assert.Equal(t, m.Body, back.Body)
	assert.True(t, m.DateTime.Equal(back.DateTime))

	m.DateTime = time.Date(2024, 5, 6, 7, 8, 9, 500_000_000, time.FixedZone("", 5*3600+1800))
	out = roundTrip(t, m)
	assert.Contains(t, string(out), "DateTime: 2024-05-06T07:08:09.5+05:30\r\n")
	m.DateTime = time.Time{}
	assert.NotContains(t, string(roundTrip(t, m)), "DateTime")
}

func TestHeaderAccess(t *testing.T) {
	m := &Message{NS: map[string]string{"imdn": "urn:other"}}
	m.Add(NamespaceIMDN, "Message-ID", "1")
	m.Add("urn:example:y", "A", "a1")
	m.Add("urn:example:y", "A", "a2")
	m.Add("urn:example:z", "B", "b")
	assert.Equal(t, map[string]string{"imdn": "urn:other", "imdn2": NamespaceIMDN, "ns": "urn:example:y", "ns2": "urn:example:z"}, m.NS)
	assert.Equal(t, []string{"a1", "a2"}, m.GetAll("urn:example:y", "A"))
	m.Set("urn:example:y", "A", "a3")
	assert.Equal(t, []string{"a3"}, m.GetAll("urn:example:y", "A"))
	v, ok := m.Get("URN:IETF:PARAMS:IMDN", "Message-ID")
	assert.True(t, ok)
	assert.Equal(t, "1", v)
	m.Del(NamespaceIMDN, "Message-ID")
	_, ok = m.Get(NamespaceIMDN, "Message-ID")
	assert.False(t, ok)
	assert.Equal(t, "imdn2", m.prefixFor(NamespaceIMDN), "an existing binding is reused")
}

func TestParseErrors(t *testing.T) {
	const from, to, ct = "From: <im:a@example.com>", "To: <im:b@example.com>", "Content-Type: text/plain"
	msg := func(lines ...string) []byte { return crlfJoin(lines...) }
	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"no blank line", msg(from, to), ErrMalformed},
		{"no blank line, trailing CRLF", msg(from, to, ""), ErrMalformed},
		{"missing From", msg(to, "", ct, "", ""), ErrMissingHeader},
		{"missing To", msg(from, "", ct, "", ""), ErrMissingHeader},
		{"missing Content-Type", msg(from, to, "", "Content-ID: <x>", "", ""), ErrMissingHeader},
		{"no MIME headers", msg(from, to, "", "", "body"), ErrMissingHeader},
		{"empty Content-Type", msg(from, to, "", "Content-Type:  ", "", ""), ErrMissingHeader},
		{"two From", msg(from, from, to, "", ct, "", ""), ErrDuplicateHeader},
		{"two DateTime", msg(from, to, "DateTime: 2000-01-01T00:00:00Z", "DateTime: 2000-01-01T00:00:00Z", "", ct, "", ""), ErrDuplicateHeader},
		{"two Require", msg(from, to, "Require: A", "Require: B", "", ct, "", ""), ErrDuplicateHeader},
		{"two Subject same lang", msg(from, to, "Subject:;lang=en a", "Subject:;lang=EN b", "", ct, "", ""), ErrDuplicateHeader},
		{"two Subject no lang", msg(from, to, "Subject: a", "Subject: b", "", ct, "", ""), ErrDuplicateHeader},
		{"NS rebound", msg(from, to, "NS: p <urn:a>", "NS: p <urn:b>", "", ct, "", ""), ErrDuplicateHeader},
		{"two Content-Type", msg(from, to, "", ct, "content-type: text/html", "", ""), ErrDuplicateHeader},
		{"bad DateTime", msg(from, to, "DateTime: yesterday", "", ct, "", ""), ErrBadDateTime},
		{"DateTime without zone", msg(from, to, "DateTime: 2000-01-01T00:00:00", "", ct, "", ""), ErrBadDateTime},
		{"DateTime bad month", msg(from, to, "DateTime: 2000-13-01T00:00:00Z", "", ct, "", ""), ErrBadDateTime},
		{"From without brackets", msg("From: alice@example.com", to, "", ct, "", ""), ErrBadAddress},
		{"To relative URI", msg(from, "To: <bob>", "", ct, "", ""), ErrBadAddress},
		{"cc unterminated", msg(from, to, `cc: "Bob <im:b@x>`, "", ct, "", ""), ErrBadAddress},
		{"NS without URI", msg(from, to, "NS: p", "", ct, "", ""), ErrBadAddress},
		{"NS bad prefix", msg(from, to, "NS: a.b <urn:x>", "", ct, "", ""), ErrBadAddress},
		{"NS fragment", msg(from, to, "NS: p <http://x/#f>", "", ct, "", ""), ErrBadAddress},
		{"undeclared prefix", msg(from, to, "imdn.Message-ID: 1", "", ct, "", ""), ErrUndeclaredPrefix},
		{"prefix used before NS", msg(from, to, "p.X: 1", "NS: p <urn:p>", "", ct, "", ""), ErrUndeclaredPrefix},
		{"control char", msg(from, to, "Subject: a\tb", "", ct, "", ""), ErrMalformed},
		{"bare CR", msg(from, to+"\r", "", ct, "", ""), ErrMalformed},
		{"NUL", msg(from, "X: a\x00", to, "", ct, "", ""), ErrMalformed},
		{"not UTF-8", msg(from, to, "Subject: \xff", "", ct, "", ""), ErrMalformed},
		{"no colon", msg(from, to, "Subject", "", ct, "", ""), ErrMalformed},
		{"leading space", msg(from, to, " Subject: x", "", ct, "", ""), ErrMalformed},
		{"space in name", msg(from, to, "Sub ject: x", "", ct, "", ""), ErrMalformed},
		{"two dots", msg(from, to, "NS: a <urn:a>", "a.b.c: x", "", ct, "", ""), ErrMalformed},
		{"params on From", msg("From:;x=1 <im:a@x>", to, "", ct, "", ""), ErrMalformed},
		{"bad lang", msg(from, to, "Subject:;lang=toolonglanguage x", "", ct, "", ""), ErrMalformed},
		{"other Subject param", msg(from, to, "Subject:;charset=x x", "", ct, "", ""), ErrMalformed},
		{"param without value", msg(from, to, "X:;p= v", "", ct, "", ""), ErrMalformed},
		{"param without =", msg(from, to, "X:;p v", "", ct, "", ""), ErrMalformed},
		{"param unterminated", msg(from, to, `X:;p="v`, "", ct, "", ""), ErrMalformed},
		{"no space after param", msg(from, to, "X:;p=v,w", "", ct, "", ""), ErrMalformed},
		{"bad Require", msg(from, to, "Require: a,,b", "", ct, "", ""), ErrMalformed},
		{"default NS after unprefixed", msg(from, to, "X: 1", "NS: <urn:x>", "", ct, "", ""), ErrMalformed},
		{"MIME continuation first", msg(from, to, "", " folded", ct, "", ""), ErrMalformed},
		{"MIME no colon", msg(from, to, "", ct, "garbage", "", ""), ErrMalformed},
		{"MIME bad name", msg(from, to, "", ct, "Bad Name: x", "", ""), ErrMalformed},
		{"MIME control char", msg(from, to, "", ct, "X: a\x01", "", ""), ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.in)
			require.ErrorIs(t, err, tc.want)
		})
	}
}

func TestParseBounds(t *testing.T) {
	head := crlfJoin("From: <im:a@example.com>", "To: <im:b@example.com>", "")

	// A header block that never ends: refused at the limit, however much
	// input follows.
	huge := append(bytes.Clone(head), bytes.Repeat([]byte("X"), 64<<20)...)
	start := time.Now()
	_, err := Parse(huge)
	require.ErrorIs(t, err, ErrHeaderTooLarge)
	assert.Less(t, time.Since(start), time.Second)
	assert.Less(t, allocatedBy(func() { _, _ = Parse(huge) }), uint64(64<<10))

	// Just under and just over a configured limit.
	msg := crlfJoin("From: <im:a@example.com>", "To: <im:b@example.com>", "", "Content-Type: text/plain", "", "body")
	headerLen := bytes.Index(msg, []byte("body"))
	_, err = Parser{MaxHeaderBytes: headerLen}.Parse(msg)
	require.NoError(t, err)
	_, err = Parser{MaxHeaderBytes: headerLen - 1}.Parse(msg)
	require.ErrorIs(t, err, ErrHeaderTooLarge)

	// The body is not limited.
	big := append(bytes.Clone(msg), bytes.Repeat([]byte("b"), 1<<20)...)
	m, err := Parse(big)
	require.NoError(t, err)
	assert.Len(t, m.Body, 1<<20+4)

	// Too many header lines, in the CPIM block or the MIME block.
	_, err = Parser{MaxHeaders: 3}.Parse(msg)
	require.NoError(t, err)
	_, err = Parser{MaxHeaders: 2}.Parse(msg)
	require.ErrorIs(t, err, ErrTooManyHeaders)
	_, err = Parser{MaxHeaders: 1}.Parse(msg)
	require.ErrorIs(t, err, ErrTooManyHeaders)
	many := bytes.Clone(head[:len(head)-2])
	for range DefaultMaxHeaders {
		many = append(many, "\r\nTo: <im:c@example.com>"...)
	}
	_, err = Parse(append(many, "\r\n\r\nContent-Type: text/plain\r\n\r\n"...))
	require.ErrorIs(t, err, ErrTooManyHeaders)
}

func TestMarshalErrors(t *testing.T) {
	base := func() *Message {
		return &Message{From: Address{"", "im:a@x"}, To: []Address{{"", "im:b@x"}}, ContentType: "text/plain"}
	}
	for _, tc := range []struct {
		name string
		mod  func(*Message)
		want error
	}{
		{"no From", func(m *Message) { m.From = Address{} }, ErrMissingHeader},
		{"no To", func(m *Message) { m.To = nil }, ErrMissingHeader},
		{"no Content-Type", func(m *Message) { m.ContentType = "" }, ErrMissingHeader},
		{"bad From URI", func(m *Message) { m.From.URI = "not a uri" }, ErrBadAddress},
		{"bad To URI", func(m *Message) { m.To[0].URI = "x" }, ErrBadAddress},
		{"bad cc", func(m *Message) { m.Cc = []Address{{"", "<x:y>"}} }, ErrBadAddress},
		{"name not UTF-8", func(m *Message) { m.From.Name = "\xff" }, ErrBadAddress},
		{"year 10000", func(m *Message) { m.DateTime = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, ErrBadDateTime},
		{"bad lang", func(m *Message) { m.Subject = []Subject{{"e n", "x"}} }, ErrMalformed},
		{"dup subject", func(m *Message) { m.Subject = []Subject{{"en", "x"}, {"EN", "y"}} }, ErrDuplicateHeader},
		{"subject trailing space", func(m *Message) { m.Subject = []Subject{{"", "x "}} }, ErrMalformed},
		{"subject not UTF-8", func(m *Message) { m.Subject = []Subject{{"", "\xff"}} }, ErrMalformed},
		{"bad NS prefix", func(m *Message) { m.NS = map[string]string{"a.b": "urn:x"} }, ErrMalformed},
		{"bad NS URI", func(m *Message) { m.NS = map[string]string{"a": "x"} }, ErrBadAddress},
		{"NS fragment", func(m *Message) { m.NS = map[string]string{"a": "urn:x#y"} }, ErrBadAddress},
		{"bad Require", func(m *Message) { m.Require = []string{"a b"} }, ErrMalformed},
		{"bad header name", func(m *Message) { m.Headers = []Header{{Name: "a b", Value: "x"}} }, ErrMalformed},
		{"undeclared prefix", func(m *Message) { m.Headers = []Header{{Name: "p.X", Value: "x"}} }, ErrUndeclaredPrefix},
		{"core name", func(m *Message) { m.Headers = []Header{{Name: "From", Value: "<im:c@x>"}} }, ErrMalformed},
		{"core name via prefix", func(m *Message) {
			m.NS = map[string]string{"c": NamespaceCPIM}
			m.Headers = []Header{{Name: "c.DateTime", Value: "x"}}
		}, ErrMalformed},
		{"control char in value", func(m *Message) { m.Headers = []Header{{Name: "X", Value: "a\nb"}} }, ErrMalformed},
		{"value not UTF-8", func(m *Message) { m.Headers = []Header{{Name: "X", Value: "\xff"}} }, ErrMalformed},
		{"value trailing space", func(m *Message) { m.Headers = []Header{{Name: "X", Value: "a "}} }, ErrMalformed},
		{"bad param", func(m *Message) { m.Headers = []Header{{Name: "X", Params: []Param{{"p", "a b"}}}} }, ErrMalformed},
		{"bad param name", func(m *Message) { m.Headers = []Header{{Name: "X", Params: []Param{{"p.q", "1"}}}} }, ErrMalformed},
		{"Content-Type twice", func(m *Message) { m.ContentHeaders = []Field{{"content-type", "x"}} }, ErrDuplicateHeader},
		{"bad field name", func(m *Message) { m.ContentHeaders = []Field{{"Content ID", "x"}} }, ErrMalformed},
		{"field CRLF", func(m *Message) { m.ContentHeaders = []Field{{"X", "a\r\nInjected: 1"}} }, ErrMalformed},
		{"Content-Type CRLF", func(m *Message) { m.ContentType = "text/plain\r\n\r\nbody" }, ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := base()
			tc.mod(m)
			_, err := m.Marshal()
			require.ErrorIs(t, err, tc.want)
		})
	}
	_, err := base().Marshal()
	require.NoError(t, err)
}

// allocatedBy returns the bytes f allocates on the heap.
func allocatedBy(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func TestErrorsWrapDetail(t *testing.T) {
	_, err := Parse(crlfJoin("From: <im:a@x>", "From: <im:a@x>", "To: <im:b@x>", "", "Content-Type: a/b", "", ""))
	require.Error(t, err)
	assert.Equal(t, "cpim: duplicate header: line 2: From", err.Error())
	assert.False(t, errors.Is(err, ErrMalformed))
}
