package msrp

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// .ci/run's "tracked files" step, run on a scratch repository: it must
// catch what go build writes for any GOOS.
func trackedFilesStep(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile(".ci/run")
	require.NoError(t, err)
	s := string(raw)
	from := strings.Index(s, `step "tracked files"`)
	to := strings.Index(s, `[ "$bad" = 0 ] || exit 1`)
	require.True(t, from >= 0 && to > from, "the step moved")
	return "set -euo pipefail\nstep() { :; }\n" + s[from:to] + "[ \"$bad\" = 0 ] || exit 1\n"
}

// Go builds executables that are not ELF, PE or thin Mach-O: GOOS=wasip1
// and GOOS=js write WebAssembly ("\0asm"), and lipo's universal macOS
// binaries start with 0xcafebabe. Before, the step let both in.
func TestCITrackedFilesStepCatchesGoBuildOutputs(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git")
	}
	script := trackedFilesStep(t)
	for name, magic := range map[string]string{
		"msrpcat.wasm": "\x00asm\x01\x00\x00\x00",
		"msrpcat-mac":  "\xca\xfe\xba\xbe\x00\x00\x00\x02",
		"msrpcat-elf":  "\x7fELF\x02\x01\x01\x00", // caught: the control
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			run := func(args ...string) {
				cmd := exec.Command(args[0], args[1:]...)
				cmd.Dir = dir
				out, err := cmd.CombinedOutput()
				require.NoError(t, err, "%v: %s", args, out)
			}
			run("git", "init", "-q")
			require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(magic+strings.Repeat("\x00", 64)), 0o644))
			run("git", "add", name)
			cmd := exec.Command("bash", "-c", script)
			cmd.Dir = dir
			out, err := cmd.CombinedOutput()
			assert.Error(t, err, "a tracked %s passes the step: %s", name, out)
		})
	}
}
