package main

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/go-msrp/msrp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// With --force, a symbolic link in the --out folder that has the sender's
// name is replaced, never followed: the peer chooses the name, and the
// file the link points to lies outside the folder. Before, create opened
// the name with O_TRUNC and overwrote the link's target.
func TestForceDoesNotFollowSymlinksOutOfTheFolder(t *testing.T) {
	out := t.TempDir()
	elsewhere := filepath.Join(t.TempDir(), "thesis.tex")
	require.NoError(t, os.WriteFile(elsewhere, []byte("three years of work"), 0o600))
	require.NoError(t, os.Symlink(elsewhere, filepath.Join(out, "thesis.tex")))

	r := newReceiver(out, true, func(string, ...any) {})
	m := &msrp.IncomingMessage{MessageID: "m1234567", ContentType: "application/octet-stream",
		Headers: msrp.Header{{Name: "Content-Disposition", Value: `attachment; filename="thesis.tex"`}}}
	w := r.writer(nil, m)
	require.NotNil(t, w)
	_, _ = io.WriteString(w, "the peer's bytes")
	r.done(m)

	got, err := os.ReadFile(elsewhere)
	require.NoError(t, err)
	assert.Equal(t, "three years of work", string(got), "a file outside --out was overwritten through a symlink")
}

// --file naming a folder is an argument error (status 2), found before
// anything is set up. Before, it failed later, while sending, with status 1.
func TestFileThatIsAFolderIsAnArgumentError(t *testing.T) {
	_, err := parseArgs([]string{"connect", "--file", t.TempDir(), "msrp://127.0.0.1:2855/abcd;tcp"}, io.Discard)
	assert.Error(t, err, "--file names a folder")
}

// With --force, a transfer that fails leaves the file it was to replace as
// it was; one that succeeds replaces it.
func TestForceReplacesOnlyAWholeFile(t *testing.T) {
	out := t.TempDir()
	old := filepath.Join(out, "notes.txt")
	receive := func(id string, fail bool) {
		r := newReceiver(out, true, func(string, ...any) {})
		m := &msrp.IncomingMessage{MessageID: id, ContentType: "application/octet-stream",
			Headers: msrp.Header{{Name: "Content-Disposition", Value: `attachment; filename="notes.txt"`}}}
		w := r.writer(nil, m)
		_, _ = io.WriteString(w, "new")
		if fail {
			m.Err = msrp.ErrMessageAborted
		}
		r.done(m)
	}
	require.NoError(t, os.WriteFile(old, []byte("old"), 0o644))
	receive("m1234567", true)
	got, err := os.ReadFile(old)
	require.NoError(t, err)
	assert.Equal(t, "old", string(got), "a failed transfer keeps the old file")
	receive("m7654321", false)
	got, err = os.ReadFile(old)
	require.NoError(t, err)
	assert.Equal(t, "new", string(got))
	left, err := os.ReadDir(out)
	require.NoError(t, err)
	assert.Len(t, left, 1, "no temporary file is left")
}

// A name with a format character, such as a right-to-left override that
// would show "photo\u202Egpj.exe" as "photoexe.jpg", is not used.
func TestSavedNameRefusesFormatCharacters(t *testing.T) {
	m := &msrp.IncomingMessage{MessageID: "m1234567",
		Headers: msrp.Header{{Name: "Content-Disposition", Value: "attachment; filename=\"photo\u202egpj.exe\""}}}
	assert.Equal(t, "msrp-m1234567", savedName(m))
}
