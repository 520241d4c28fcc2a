package cpim

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// billionLaughs is the classic entity-expansion document, with a valid
// isComposing root so that only the declarations make it bad.
const billionLaughs = `<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing"><state>&lol9;</state></isComposing>`

func TestXMLBombs(t *testing.T) {
	imdnBomb := strings.Replace(billionLaughs,
		`<isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing"><state>&lol9;</state></isComposing>`,
		`<imdn xmlns="urn:ietf:params:xml:ns:imdn"><message-id>&lol9;</message-id></imdn>`, 1)
	for name, doc := range map[string]string{
		"billion laughs": billionLaughs,
		"imdn bomb":      imdnBomb,
		"external entity": `<?xml version="1.0"?><!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>` +
			`<isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing"><state>&xxe;</state></isComposing>`,
		"bare doctype":   `<!DOCTYPE isComposing><isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing"><state>active</state></isComposing>`,
		"entity outside": `<!ENTITY x "y"><isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing"><state>active</state></isComposing>`,
		"after root":     `<isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing"><state>active</state></isComposing><!DOCTYPE x>`,
	} {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			var err error
			alloc := allocatedBy(func() {
				if strings.Contains(doc, "imdn") {
					_, err = ParseIMDN([]byte(doc))
				} else {
					_, err = ParseIsComposing([]byte(doc))
				}
			})
			require.ErrorIs(t, err, ErrXMLDeclaration)
			assert.Less(t, time.Since(start), 100*time.Millisecond)
			assert.Less(t, alloc, uint64(64<<10), "bytes allocated")
			assert.Contains(t, err.Error(), "<!")
		})
	}
}

func TestXMLLimits(t *testing.T) {
	ok := `<isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing"><state>active</state></isComposing>`

	// Size: refused before decoding, even if well-formed.
	padded := ok + strings.Repeat(" ", DefaultMaxXMLBytes-len(ok))
	_, err := ParseIsComposing([]byte(padded))
	require.NoError(t, err)
	_, err = ParseIsComposing([]byte(padded + " "))
	require.ErrorIs(t, err, ErrXMLTooLarge)
	_, err = ParseIMDN([]byte(padded + " "))
	require.ErrorIs(t, err, ErrXMLTooLarge)
	_, err = Parser{MaxXMLBytes: len(ok) - 1}.ParseIsComposing([]byte(ok))
	require.ErrorIs(t, err, ErrXMLTooLarge)

	// Depth, counted from the root: an extension nested past the limit.
	nested := func(levels int) string {
		return `<isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing"><state>active</state>` +
			strings.Repeat(`<x:e xmlns:x="urn:x">`, levels-1) + strings.Repeat(`</x:e>`, levels-1) + `</isComposing>`
	}
	_, err = ParseIsComposing([]byte(nested(DefaultMaxXMLDepth)))
	require.NoError(t, err)
	_, err = ParseIsComposing([]byte(nested(DefaultMaxXMLDepth + 1)))
	require.ErrorIs(t, err, ErrXMLTooDeep)
	_, err = Parser{MaxXMLDepth: 1}.ParseIsComposing([]byte(ok))
	require.ErrorIs(t, err, ErrXMLTooDeep)
	// Very deep input stops at the limit, cheaply.
	deep := strings.Repeat("<a>", 20000)
	_, err = ParseIsComposing([]byte(deep))
	require.ErrorIs(t, err, ErrXMLTooDeep)
}

func TestXMLWellFormedness(t *testing.T) {
	for name, doc := range map[string]string{
		"two roots":        `<a/><b/>`,
		"text outside":     `<a/>junk`,
		"no root":          `<?xml version="1.0"?><!-- nothing -->`,
		"mismatched":       `<a></b>`,
		"unknown entity":   `<a>&nbsp;</a>`,
		"latin-1 declared": `<?xml version="1.0" encoding="ISO-8859-1"?><a/>`,
		"invalid UTF-8":    "<a>\xff</a>",
		"bad attribute":    `<a b=c/>`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParseIsComposing([]byte(doc))
			require.ErrorIs(t, err, ErrMalformed)
		})
	}
	// Comments, processing instructions, CDATA and predefined entities
	// are fine.
	ic, err := ParseIsComposing([]byte(`<?xml version="1.0" encoding="utf-8"?><!-- c --><?pi x?>` +
		`<isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing"><state><![CDATA[act]]>&#105;ve</state>` +
		`<contenttype>text/&lt;x&gt;</contenttype></isComposing>`))
	require.NoError(t, err)
	assert.Equal(t, StateActive, ic.State)
	assert.Equal(t, "text/<x>", ic.ContentType)
}
