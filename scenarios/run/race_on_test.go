//go:build race

package run

// raceDetector: this test binary runs under the race detector, several
// times slower, beside other packages in make test's -race pass.
const raceDetector = true
