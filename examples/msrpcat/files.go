package main

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"mime"
	"os"
	"path/filepath"
	"strings"
	"unicode"

	"github.com/go-msrp/msrp"
)

// receiver takes the files that arrive: each is hashed and, with --out,
// saved in that folder. Only the session's callback goroutine uses it.
type receiver struct {
	dir   string
	force bool
	say   func(string, ...any)
	files map[string]*incomingFile // by Message-ID
}

type incomingFile struct {
	hash hash.Hash
	file *os.File // nil when not saved
	path string   // where it is saved
	into string   // with --force: the name the file takes once whole
}

func (in *incomingFile) Write(p []byte) (int, error) {
	in.hash.Write(p)
	if in.file != nil {
		return in.file.Write(p)
	}
	return len(p), nil
}

func newReceiver(dir string, force bool, say func(string, ...any)) *receiver {
	return &receiver{dir: dir, force: force, say: say, files: map[string]*incomingFile{}}
}

// writer is the session's MessageWriter: text stays in memory, anything
// else is a file.
func (r *receiver) writer(_ *msrp.MSRPSession, m *msrp.IncomingMessage) io.Writer {
	if strings.HasPrefix(m.ContentType, "text/") {
		return nil
	}
	in := &incomingFile{hash: sha256.New()}
	r.files[m.MessageID] = in
	if r.dir != "" {
		var err error
		if err = r.create(in, savedName(m)); err != nil {
			r.say("cannot save the file of message %s: %v", m.MessageID, err)
		}
	}
	return in
}

// done reports a file that has ended, and whether m was one.
func (r *receiver) done(m *msrp.IncomingMessage) bool {
	in, ok := r.files[m.MessageID]
	if !ok {
		return false
	}
	delete(r.files, m.MessageID)
	if in.file != nil {
		err := in.file.Close()
		switch {
		case m.Err != nil || err != nil:
			os.Remove(in.path) // half a file is no file; what it was to replace stays
		case in.into != "":
			// Rename replaces what has the name, a symbolic link
			// included, never the file a link points to.
			err = os.Rename(in.path, in.into)
			in.path = in.into
		}
		if err != nil && m.Err == nil {
			r.say("cannot save the file of message %s: %v", m.MessageID, err)
			in.file = nil
		}
	}
	if m.Err != nil {
		r.say("file of message %s failed: %v", m.MessageID, m.Err)
		return true
	}
	saved := ""
	if in.file != nil {
		saved = ", saved as " + in.path
	}
	r.say("received a file (%s), %d bytes, SHA-256 %x%s", m.ContentType, m.Received, in.hash.Sum(nil), saved)
	return true
}

// create makes the file for name in the folder: never over another file
// unless --force, but under the next free name "name-1.ext", ... With
// --force the file is written under a temporary name and takes its own
// once whole, so a failed transfer leaves the old file as it was.
// O_EXCL never follows a symbolic link of the name, and rename replaces
// the link itself: the peer's name never reaches outside the folder.
func (r *receiver) create(in *incomingFile, name string) error {
	if r.force {
		f, err := os.CreateTemp(r.dir, ".msrpcat-*.part")
		if err != nil {
			return err
		}
		in.file, in.path, in.into = f, f.Name(), filepath.Join(r.dir, name)
		return nil
	}
	ext := filepath.Ext(name)
	stem := strings.TrimSuffix(name, ext)
	for i := 0; i < 1000; i++ {
		candidate := name
		if i > 0 {
			candidate = fmt.Sprintf("%s-%d%s", stem, i, ext)
		}
		path := filepath.Join(r.dir, candidate)
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if !errors.Is(err, fs.ErrExist) {
			if err == nil {
				in.file, in.path = f, path
			}
			return err
		}
	}
	return fmt.Errorf("no free name for %s in %s", name, r.dir)
}

// savedName is the name a received file is saved under: the base of the
// filename its sender gave (Content-Disposition), if that is a plain name;
// no path from the peer is trusted, nor a name with control or format
// characters (a right-to-left override would disguise its extension).
// Else "msrp-<Message-ID>".
func savedName(m *msrp.IncomingMessage) string {
	fallback := "msrp-" + m.MessageID
	_, params, err := mime.ParseMediaType(m.Headers.Get("Content-Disposition"))
	if err != nil {
		return fallback
	}
	name := filepath.Base(strings.ReplaceAll(params["filename"], `\`, "/"))
	if name == "" || name == "." || name == ".." || name == "/" || strings.HasPrefix(name, ".") || len(name) > 200 ||
		strings.ContainsFunc(name, func(r rune) bool { return r == '/' || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) }) {
		return fallback
	}
	return name
}
