package cpim

import (
	"bytes"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Marshal then Parse: a Message built by an application must come back
// the same (the fuzzers only check Parse -> Marshal -> Parse).
func TestReviewCPIMMarshalParse(t *testing.T) {
	names := []string{"", "Bob", "J.R. Smith", "a  b", ` lead`, "trail ", `q"uote`, `back\slash`, "tab\tname", "ctl\x01", "ünï cødé", "<x>", "a,b", "😀"}
	for _, name := range names {
		m := &Message{
			From:        Address{Name: name, URI: "sip:a@example.com"},
			To:          []Address{{Name: name, URI: "im:b@example.com;x=y"}},
			Cc:          []Address{{URI: "tel:+123"}},
			DateTime:    time.Date(2024, 2, 29, 23, 59, 59, 123456789, time.FixedZone("", -(9*3600+30*60))),
			Subject:     []Subject{{Text: " lead \\u0041 " + name + "x"}, {Lang: "fr-CA", Text: "Salut\r\n\"x\""}},
			ContentType: `text/plain; charset="utf-8"`,
			Body:        []byte("\r\n\r\nbody\x00"),
		}
		m.Add("urn:example:ns", "X-Thing", Escape("v\\al;ue "+"x"))
		m.Headers = append(m.Headers, Header{Name: "Plain", Params: []Param{{"p", `"q;r"`}}, Value: ";starts"})
		m.RequestIMDN("msgid0001", PositiveDelivery, Display)
		out, err := m.Marshal()
		require.NoError(t, err, "%q", name)
		got, err := Parse(out)
		require.NoError(t, err, "%q\n%s", name, out)
		assert.Equal(t, m.From, got.From, "%q", name)
		assert.Equal(t, m.To, got.To, "%q", name)
		assert.Equal(t, m.Cc, got.Cc)
		assert.True(t, m.DateTime.Equal(got.DateTime))
		assert.Equal(t, m.Subject, got.Subject, "%q", name)
		assert.Equal(t, m.Headers, got.Headers)
		assert.Equal(t, m.ContentType, got.ContentType)
		assert.Equal(t, m.Body, got.Body)
		v, _ := got.Get("urn:example:ns", "X-Thing")
		assert.Equal(t, "v\\al;ue x", Unescape(v))
	}
}

// A DateTime whose zone offset has seconds (local mean time, as
// time.LoadLocation gives for old dates) is written truncated to minutes:
// the instant changes.
func TestReviewCPIMDateTimeSubMinuteOffset(t *testing.T) {
	lmt := time.Date(1890, 1, 1, 12, 0, 0, 0, time.FixedZone("LMT", 1172)) // +00:19:32, Amsterdam's LMT
	m := &Message{From: Address{URI: "sip:a@x"}, To: []Address{{URI: "sip:b@x"}}, DateTime: lmt, ContentType: "text/plain"}
	out, err := m.Marshal()
	require.NoError(t, err)
	got, err := Parse(out)
	require.NoError(t, err)
	assert.True(t, lmt.Equal(got.DateTime), "sent %v, read back %v (%s)", lmt.UTC(), got.DateTime.UTC(), out)
}

// RFC 3862 DateTime forms (RFC 3339): fraction, lower case, and the leap
// second RFC 3339 §5.6 allows.
func TestReviewCPIMDateTimeForms(t *testing.T) {
	for _, v := range []string{"2000-12-13T13:40:00-08:00", "2000-12-13t13:40:00.5z", "2000-12-13T13:40:00.123456789+14:00"} {
		_, err := Parse(crlfJoin("From: <im:a@x>", "To: <im:b@x>", "DateTime: "+v, "", "Content-Type: a/b", "", ""))
		assert.NoError(t, err, v)
	}
	for _, v := range []string{"2000-12-13 13:40:00Z", "2000-13-13T13:40:00Z", "yesterday", "2000-12-13T13:40Z", ""} {
		_, err := Parse(crlfJoin("From: <im:a@x>", "To: <im:b@x>", "DateTime: "+v, "", "Content-Type: a/b", "", ""))
		assert.ErrorIs(t, err, ErrBadDateTime, v)
	}
}

// RFC 3862 / RFC 4975 §13 occurrence rules and header rules.
func TestReviewCPIMHeaderRules(t *testing.T) {
	base := func(lines ...string) []byte {
		return crlfJoin(append(append([]string{}, lines...), "", "Content-Type: text/plain", "", "x")...)
	}
	bad := map[string][]byte{
		"two From":            base("From: <im:a@x>", "From: <im:c@x>", "To: <im:b@x>"),
		"no From":             base("To: <im:b@x>"),
		"no To":               base("From: <im:a@x>"),
		"two DateTime":        base("From: <im:a@x>", "To: <im:b@x>", "DateTime: 2000-01-01T00:00:00Z", "DateTime: 2000-01-01T00:00:00Z"),
		"prefix before NS":    base("From: <im:a@x>", "To: <im:b@x>", "imdn.Message-ID: x", "NS: imdn <urn:ietf:params:imdn>"),
		"NS rebinding":        base("From: <im:a@x>", "To: <im:b@x>", "NS: p <urn:a>", "NS: p <urn:b>"),
		"control char":        base("From: <im:a@x>", "To: <im:b@x>", "X: a\x01b"),
		"From with params":    base("From:;p=1 <im:a@x>", "To: <im:b@x>"),
		"two To in one":       base("From: <im:a@x>", "To: <im:b@x>, <im:c@x>"),
		"relative URI":        base("From: <a@x>", "To: <im:b@x>"),
		"two Subjects same":   base("From: <im:a@x>", "To: <im:b@x>", "Subject: a", "Subject: b"),
		"bad lang":            base("From: <im:a@x>", "To: <im:b@x>", "Subject:;lang=123 a"),
		"no Content-Type":     crlfJoin("From: <im:a@x>", "To: <im:b@x>", "", "Content-ID: x", "", "body"),
		"two Content-Types":   crlfJoin("From: <im:a@x>", "To: <im:b@x>", "", "Content-Type: a/b", "content-type: c/d", "", "body"),
		"invalid UTF-8 value": base("From: <im:a@x>", "To: <im:b@x>", "X: \xff"),
	}
	for name, msg := range bad {
		_, err := Parse(msg)
		assert.Error(t, err, name)
	}
	good := map[string][]byte{
		"lower-case from is an extension, with From": base("From: <im:a@x>", "from: whatever", "To: <im:b@x>"),
		"two To":       base("From: <im:a@x>", "To: <im:b@x>", "To: <im:c@x>"),
		"Subject/lang": base("From: <im:a@x>", "To: <im:b@x>", "Subject: a", "Subject:;lang=fr b", "Subject:;lang=en c"),
		"cpim prefix":  base("NS: c <urn:ietf:params:cpim-headers:>", "c.From: <im:a@x>", "To: <im:b@x>"),
	}
	for name, msg := range good {
		m, err := Parse(msg)
		if assert.NoError(t, err, name) {
			_, err := m.Marshal()
			assert.NoError(t, err, name)
		}
	}
}

// XML: bombs and hostile shapes are refused or bounded in time and memory.
func TestReviewCPIMXMLHostile(t *testing.T) {
	quadratic := `<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "` + strings.Repeat("A", 30000) + `">]><isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing"><state>` + strings.Repeat("&a;", 1000) + `</state></isComposing>`
	external := `<?xml version="1.0"?><!DOCTYPE x SYSTEM "file:///etc/passwd"><isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing"><state>active</state></isComposing>`
	deep := strings.Repeat("<a>", 20000) + strings.Repeat("</a>", 20000)
	deepInside := `<imdn xmlns="urn:ietf:params:xml:ns:imdn">` + strings.Repeat("<x>", 31) + strings.Repeat("</x>", 31) + `</imdn>`
	wide := `<imdn xmlns="urn:ietf:params:xml:ns:imdn">` + strings.Repeat(`<message-id>1</message-id>`, 2400) + `</imdn>`
	attrs := `<imdn xmlns="urn:ietf:params:xml:ns:imdn"` + strings.Repeat(` xmlns:p="urn:x"`, 1) + rvAttrs(3000) + `><message-id>1</message-id></imdn>`
	nsmany := `<isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing">` + rvNSElems(2000) + `<state>active</state></isComposing>`
	undefinedEntity := `<isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing"><state>&lol;</state></isComposing>`
	for name, doc := range map[string]string{"billion": billionLaughs, "quadratic": quadratic, "external": external, "deep": deep,
		"deepInside": deepInside, "wide": wide, "attrs": attrs, "nsmany": nsmany, "undefinedEntity": undefinedEntity} {
		start := time.Now()
		var errIC, errN error
		alloc := rvAllocated(func() {
			_, errIC = ParseIsComposing([]byte(doc))
			_, errN = ParseIMDN([]byte(doc))
		})
		assert.Less(t, time.Since(start), time.Second, name)
		assert.Less(t, alloc, uint64(32<<20), name)
		if name != "nsmany" {
			assert.Error(t, errIC, name)
			assert.Error(t, errN, name)
		}
	}
}

func rvAttrs(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString(` a` + strings.Repeat("b", i%5) + string(rune('a'+i%26)) + string(rune('a'+i/26%26)) + string(rune('a'+i/676%26)) + `="1"`)
	}
	return b.String()
}

func rvNSElems(n int) string {
	var b strings.Builder
	for i := range n {
		_ = i
		b.WriteString(`<e xmlns="urn:x"/>`)
	}
	return b.String()
}

func rvAllocated(f func()) uint64 {
	var a, b runtime.MemStats
	runtime.ReadMemStats(&a)
	f()
	runtime.ReadMemStats(&b)
	return b.TotalAlloc - a.TotalAlloc
}

// XML 1.0 §4.3.3 allows a UTF-8 byte order mark before the document.
func TestReviewCPIMXMLByteOrderMark(t *testing.T) {
	_, err := ParseIsComposing(append([]byte("\xEF\xBB\xBF"), rfc3994Active...))
	assert.NoError(t, err)
}

// NotificationFor: To/From reversed, imdn.Message-ID quoted, a new one
// for the IMDN, Content-Disposition notification, and the request honoured
// without regard to case (ABNF literals are case-insensitive, RFC 5234
// §2.3).
func TestReviewCPIMNotificationFor(t *testing.T) {
	orig, err := Parse(rfc5438IM)
	require.NoError(t, err)
	n, err := NotificationFor(orig, KindDelivery, StatusDelivered)
	require.NoError(t, err)
	assert.Equal(t, orig.To[0], n.From)
	assert.Equal(t, []Address{orig.From}, n.To)
	assert.True(t, n.IsNotification())
	disp, _ := n.ContentHeader("Content-Disposition")
	assert.Equal(t, "notification", disp)
	id, _ := n.Get(NamespaceIMDN, "Message-ID")
	assert.NotEqual(t, "34jk324j", id)
	_, asks := n.IMDNRequest()
	assert.False(t, asks)
	out, err := n.Marshal()
	require.NoError(t, err)
	back, err := Parse(out)
	require.NoError(t, err)
	doc, err := back.Notification()
	require.NoError(t, err)
	assert.Equal(t, "34jk324j", doc.MessageID)
	assert.True(t, orig.DateTime.Equal(doc.DateTime))
	assert.Equal(t, StatusDelivered, doc.Status)
	_, err = NotificationFor(back, KindDelivery, StatusDelivered)
	assert.ErrorIs(t, err, ErrNotRequested, "no IMDN for an IMDN")
	_, err = NotificationFor(orig, KindDisplay, StatusDisplayed)
	assert.ErrorIs(t, err, ErrNotRequested, "display was not asked for")

	upper := bytes.Replace(rfc5438IM, []byte("positive-delivery"), []byte("Positive-Delivery"), 1)
	orig2, err := Parse(upper)
	require.NoError(t, err)
	_, err = NotificationFor(orig2, KindDelivery, StatusDelivered)
	assert.NoError(t, err, "Disposition-Notification values are case-insensitive")
}

// A Subject that holds a control character (legal in CPIM through \u
// escapes) must not be silently altered in the IMDN that quotes it.
func TestReviewCPIMIMDNSubjectControl(t *testing.T) {
	n := &IMDN{MessageID: "abcd", DateTime: time.Unix(0, 0).UTC(), Kind: KindDisplay, Status: StatusDisplayed, Subject: "a\x01b"}
	out, err := n.Marshal()
	if err != nil {
		return // refusing is fine
	}
	got, err := ParseIMDN(out)
	require.NoError(t, err)
	assert.Equal(t, n.Subject, got.Subject, "Marshal accepted the subject but wrote something else: %s", out)
}

// Composer timers, in a synctest bubble: active at once, refreshed before
// the advertised interval runs out, idle IdleTimeout after the last key.
func TestReviewCPIMComposerTimeline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		var mu sync.Mutex
		var got []string
		c := NewComposer(ComposerConfig{Send: func(ic *IsComposing) {
			mu.Lock()
			got = append(got, string(ic.State)+"@"+time.Since(start).String())
			mu.Unlock()
		}, Refresh: 60 * time.Second, IdleTimeout: 10 * time.Second})
		for range 30 { // 150 s of typing every 5 s
			c.Typing()
			time.Sleep(5 * time.Second)
		}
		time.Sleep(30 * time.Second)
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		assert.Equal(t, []string{"active@0s", "active@54s", "active@1m48s", "idle@2m35s"}, got)
		c.Stop()
	})
}

// Sent, Typing and the timers from many goroutines (run with -race).
func TestReviewCPIMComposerConcurrent(t *testing.T) {
	var sends atomic.Int64
	c := NewComposer(ComposerConfig{Send: func(*IsComposing) { sends.Add(1) }, IdleTimeout: time.Millisecond, Refresh: 2 * time.Second})
	w := NewWatcher(func(State) {})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 300 {
				switch (i + j) % 4 {
				case 0:
					c.Typing()
				case 1:
					c.Sent()
				case 2:
					w.Indication(&IsComposing{State: StateActive, Refresh: time.Millisecond})
				default:
					w.MessageReceived()
				}
				_ = c.State()
				_ = w.State()
			}
		}()
	}
	wg.Wait()
	c.Stop()
	w.Stop()
	n := sends.Load()
	time.Sleep(20 * time.Millisecond)
	assert.Equal(t, n, sends.Load(), "nothing sent after Stop")
}

// A Refresh given as a bare number (60 meaning 60 ns, not 60 s) is taken as
// is: the Composer then re-sends the active indication every 54 ns,
// flooding the session, while the document says refresh=1.
func TestReviewCPIMComposerTinyRefresh(t *testing.T) {
	var sends atomic.Int64
	c := NewComposer(ComposerConfig{Send: func(*IsComposing) { sends.Add(1) }, Refresh: 60})
	c.Typing()
	time.Sleep(100 * time.Millisecond)
	c.Stop()
	assert.Less(t, sends.Load(), int64(5), "active indications sent in 100 ms with Refresh=60 (ns)")
}

// Watcher: refresh expiry, re-arming, idle on a message.
func TestReviewCPIMWatcherTimeline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		var got []string
		w := NewWatcher(func(s State) { got = append(got, string(s)+"@"+time.Since(start).String()) })
		w.Indication(&IsComposing{State: StateActive, Refresh: 60 * time.Second})
		time.Sleep(50 * time.Second)
		w.Indication(&IsComposing{State: StateActive, Refresh: 60 * time.Second})
		time.Sleep(100 * time.Second)
		w.Indication(&IsComposing{State: StateActive}) // default 120 s
		time.Sleep(10 * time.Second)
		w.MessageReceived()
		time.Sleep(200 * time.Second)
		w.Indication(&IsComposing{State: "bogus"})
		synctest.Wait()
		assert.Equal(t, []string{"active@0s", "idle@1m50s", "active@2m30s", "idle@2m40s"}, got)
		w.Stop()
	})
}
