package cpim_test

import (
	"fmt"
	"strings"
	"time"

	"github.com/go-msrp/msrp/cpim"
)

func ExampleWrap() {
	m := cpim.Wrap(
		cpim.Address{Name: "Alice", URI: "sip:alice@example.com"},
		cpim.Address{Name: "Bob Smith", URI: "sip:bob@example.com"},
		"text/plain;charset=utf-8", []byte("Hello, Bob"))
	m.DateTime = time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC) // Wrap sets time.Now()
	b, err := m.Marshal()
	if err != nil {
		panic(err)
	}
	// b is the body of an MSRP SEND with Content-Type message/cpim.
	fmt.Println(strings.ReplaceAll(string(b), "\r\n", "\n"))
	// Output:
	// From: Alice <sip:alice@example.com>
	// To: Bob Smith <sip:bob@example.com>
	// DateTime: 2024-03-01T12:00:00Z
	//
	// Content-Type: text/plain;charset=utf-8
	//
	// Hello, Bob
}

func ExampleParse() {
	body := "From: \"Alice \\\"Al\\\" A.\" <sip:alice@example.com>\r\n" +
		"To: <sip:bob@example.com>\r\n" +
		"DateTime: 2024-03-01T13:00:00+01:00\r\n" +
		"NS: imdn <urn:ietf:params:imdn>\r\n" +
		"imdn.Message-ID: 7hf3k2\r\n" +
		"imdn.Disposition-Notification: positive-delivery, display\r\n" +
		"\r\n" +
		"Content-Type: text/plain\r\n" +
		"\r\n" +
		"Hi!"
	m, err := cpim.Parse([]byte(body))
	if err != nil {
		panic(err)
	}
	fmt.Printf("from %q <%s>\n", m.From.Name, m.From.URI)
	fmt.Println("to", m.To[0].URI)
	fmt.Println("sent", m.DateTime.UTC().Format(time.RFC3339))
	fmt.Printf("%s: %s\n", m.ContentType, m.Body)
	if req, ok := m.IMDNRequest(); ok {
		fmt.Println("IMDN", req.MessageID, req.Wants(cpim.Display))
	}
	// Output:
	// from "Alice \"Al\" A." <sip:alice@example.com>
	// to sip:bob@example.com
	// sent 2024-03-01T12:00:00Z
	// text/plain: Hi!
	// IMDN 7hf3k2 true
}

func ExampleIsComposing() {
	ic := &cpim.IsComposing{State: cpim.StateActive, ContentType: "text/plain", Refresh: 90 * time.Second}
	b, err := ic.Marshal()
	if err != nil {
		panic(err)
	}
	fmt.Println(string(b))

	got, err := cpim.ParseIsComposing(b)
	if err != nil {
		panic(err)
	}
	fmt.Println(got.Active(), got.Refresh)
	// Output:
	// <?xml version="1.0" encoding="UTF-8"?>
	// <isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing"><state>active</state><contenttype>text/plain</contenttype><refresh>90</refresh></isComposing>
	// true 1m30s
}

func ExampleComposer() {
	c := cpim.NewComposer(cpim.ComposerConfig{
		Send: func(ic *cpim.IsComposing) {
			// In a chat client: marshal ic and send it with
			// Content-Type cpim.ContentTypeIsComposing.
			fmt.Println("send", ic.State, "refresh", ic.Refresh)
		},
	})
	defer c.Stop()
	c.Typing() // first keystroke: active is sent
	c.Typing() // still typing: nothing to send
	c.Sent()   // the message went out: idle, nothing to send
	fmt.Println(c.State())
	// After 15 s without typing the Composer would send "idle", and while
	// typing goes on it repeats "active" every 108 s.

	// Output:
	// send active refresh 2m0s
	// idle
}

func ExampleWatcher() {
	w := cpim.NewWatcher(func(s cpim.State) { fmt.Println("peer is", s) })
	defer w.Stop()
	// For each received body of type cpim.ContentTypeIsComposing:
	ic, err := cpim.ParseIsComposing([]byte(`<?xml version="1.0" encoding="UTF-8"?>
<isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing"><state>active</state><refresh>60</refresh></isComposing>`))
	if err != nil {
		panic(err)
	}
	w.Indication(ic)
	// For each received chat message:
	w.MessageReceived()
	// Without either, the peer would go idle when its 60 s refresh ran out.

	// Output:
	// peer is active
	// peer is idle
}

func ExampleNotificationFor() {
	im, err := cpim.Parse([]byte("From: Alice <sip:alice@example.com>\r\n" +
		"To: Bob <sip:bob@example.com>\r\n" +
		"DateTime: 2024-03-01T12:00:00Z\r\n" +
		"NS: imdn <urn:ietf:params:imdn>\r\n" +
		"imdn.Message-ID: 34jk324j\r\n" +
		"imdn.Disposition-Notification: display\r\n" +
		"\r\n" +
		"Content-Type: text/plain\r\n" +
		"\r\n" +
		"Hello"))
	if err != nil {
		panic(err)
	}
	// Bob's client shows the message, then answers:
	note, err := cpim.NotificationFor(im, cpim.KindDisplay, cpim.StatusDisplayed)
	if err != nil {
		panic(err)
	}
	disp, _ := note.ContentHeader("Content-Disposition")
	fmt.Println("From:", note.From)
	fmt.Println("To:", note.To[0])
	fmt.Println("Content-Type:", note.ContentType)
	fmt.Println("Content-Disposition:", disp)
	fmt.Println(string(note.Body))
	// Output:
	// From: Bob <sip:bob@example.com>
	// To: Alice <sip:alice@example.com>
	// Content-Type: message/imdn+xml
	// Content-Disposition: notification
	// <?xml version="1.0" encoding="UTF-8"?>
	// <imdn xmlns="urn:ietf:params:xml:ns:imdn"><message-id>34jk324j</message-id><datetime>2024-03-01T12:00:00Z</datetime><recipient-uri>sip:bob@example.com</recipient-uri><original-recipient-uri>sip:bob@example.com</original-recipient-uri><display-notification><status><displayed></displayed></status></display-notification></imdn>
}
