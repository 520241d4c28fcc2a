//go:build race

package msrp

// raceEnabled lets heavy tests scale down under the race detector.
const raceEnabled = true
