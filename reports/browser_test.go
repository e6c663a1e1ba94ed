package reports

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshbench/meshbench/internal/requiretest"
)

// chromiumPath is where scripts/install-chromium.sh puts Chromium.
const chromiumPath = "/usr/bin/chromium"

// pageEvents collects what a page did that a self-contained report must not
// do: network requests other than its own document, failed loads, console
// errors and warnings, and uncaught exceptions.
type pageEvents struct {
	mu         sync.Mutex
	requests   []string // URLs requested, the document included
	failed     []string
	console    []string
	exceptions []string
}

func (e *pageEvents) listen(ev any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch ev := ev.(type) {
	case *network.EventRequestWillBeSent:
		e.requests = append(e.requests, ev.Request.URL)
	case *network.EventLoadingFailed:
		e.failed = append(e.failed, fmt.Sprintf("%s %s (blocked: %s)", ev.Type, ev.ErrorText, ev.BlockedReason))
	case *network.EventResponseReceived:
		if ev.Response.Status >= 400 {
			e.failed = append(e.failed, fmt.Sprintf("%s: HTTP %d", ev.Response.URL, ev.Response.Status))
		}
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeWarning || ev.Type == runtime.ConsoleAPICalledTypeAssert {
			var args []string
			for _, a := range ev.Args {
				args = append(args, strings.Trim(string(a.Value), `"`)+a.Description)
			}
			e.console = append(e.console, fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(args, " ")))
		}
	case *runtime.EventExceptionThrown:
		e.exceptions = append(e.exceptions, ev.ExceptionDetails.Text)
	case *log.EventEntryAdded:
		// The browser's own log: CSP violations, failed loads, deprecations.
		if ev.Entry.Level == log.EntryLevelError || ev.Entry.Level == log.EntryLevelWarning {
			e.console = append(e.console, fmt.Sprintf("log %s/%s: %s %s", ev.Entry.Source, ev.Entry.Level, ev.Entry.Text, ev.Entry.URL))
		}
	}
}

func (e *pageEvents) reset() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.requests, e.failed, e.console, e.exceptions = nil, nil, nil, nil
}

func (e *pageEvents) snapshot() (requests, failed, console, exceptions []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.requests...), append([]string(nil), e.failed...),
		append([]string(nil), e.console...), append([]string(nil), e.exceptions...)
}

// artifactDir is where the browser test writes its screenshots: the folder
// in $MESHBENCH_ARTIFACTS, else a temporary one.
func artifactDir(t *testing.T) string {
	if dir := os.Getenv("MESHBENCH_ARTIFACTS"); dir != "" {
		require.NoError(t, os.MkdirAll(dir, 0o755))
		return dir
	}
	return t.TempDir()
}

// plotInfo is what the page reports about one plot.
type plotInfo struct {
	ID       string  `json:"id"`
	Declared int     `json:"declared"` // data-series
	Series   int     `json:"series"`   // elements with class "series"
	Width    float64 `json:"width"`    // rendered width in CSS pixels
	Drawn    int     `json:"drawn"`    // series with a non-empty bounding box
}

const plotsJS = `Array.from(document.querySelectorAll('svg[data-plot]')).map(s => {
	const series = Array.from(s.querySelectorAll('.series'));
	return {
		id: s.dataset.plot,
		declared: Number(s.dataset.series),
		series: series.length,
		width: s.getBoundingClientRect().width,
		drawn: series.filter(e => { const b = e.getBBox(); return b.width > 0 || b.height > 0; }).length,
	};
})`

// TestBrowserReport opens the HTML report of a realistic result in headless
// Chromium and checks that it loads with no network request beyond its own
// file, no console error and no exception, that every plot is drawn with
// the right number of series, and saves a screenshot.
func TestBrowserReport(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		requiretest.Missing(t, requiretest.Chromium, "chromium not installed: run scripts/install-chromium.sh")
	}
	if testing.Short() {
		t.Skip("starts a browser; skipped with -short")
	}
	dir := t.TempDir()
	r := readFixture(t, "base.json")
	reportPath := filepath.Join(dir, HTMLFile)
	var b strings.Builder
	require.NoError(t, HTML(&b, r))
	require.NoError(t, os.WriteFile(reportPath, []byte(b.String()), 0o644))

	var events pageEvents
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.NoSandbox, // the test may run as root in a container
		chromedp.Flag("disable-gpu", true),
		chromedp.WindowSize(1400, 1000),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancelCtx := chromedp.NewContext(allocCtx, chromedp.WithListener(events.listen))
	defer cancelCtx()
	// Start the browser before the timeout, so that the timeout limits the work only.
	require.NoError(t, chromedp.Do(ctx), "start chromium")
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()

	// First make sure the harness sees what it is meant to catch: a page
	// that fetches from the network and logs an error.
	t.Run("harness catches failures", func(t *testing.T) {
		bad := filepath.Join(dir, "bad.html")
		require.NoError(t, os.WriteFile(bad, []byte(`<!DOCTYPE html><title>bad</title>
<img src="http://127.0.0.1:9/missing.png"><script>console.error("boom"); null.x;</script>`), 0o644))
		events.reset()
		require.NoError(t, chromedp.Do(ctx, chromedp.Navigate("file://"+bad)))
		require.Eventually(t, func() bool {
			_, failed, console, exceptions := events.snapshot()
			return len(failed) > 0 && len(console) > 0 && len(exceptions) > 0
		}, 10*time.Second, 50*time.Millisecond, "the listener must see the failed image, console.error and the exception")
		requests, _, _, _ := events.snapshot()
		assert.Contains(t, requests, "http://127.0.0.1:9/missing.png")
	})

	events.reset()
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate("file://"+reportPath),
		chromedp.WaitVisible(chromedp.CSS("#service-graph svg")),
	))
	title, err := chromedp.Run(ctx, chromedp.Title())
	require.NoError(t, err)
	assert.Equal(t, "meshbench: canary-90-10 — PASS", title)
	verdict, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#verdict")))
	require.NoError(t, err)
	assert.Equal(t, "PASS", strings.TrimSpace(verdict))

	raw, err := chromedp.Run(ctx, chromedp.Evaluate[[]byte](plotsJS))
	require.NoError(t, err)
	var plots []plotInfo
	require.NoError(t, json.Unmarshal(raw, &plots))
	got := map[string]plotInfo{}
	for _, p := range plots {
		got[p.ID] = p
		assert.Equal(t, p.Declared, p.Series, "%s: data-series matches the series drawn", p.ID)
		assert.Equal(t, p.Series, p.Drawn, "%s: every series has something visible", p.ID)
		assert.Greater(t, p.Width, 300.0, "%s is laid out", p.ID)
	}
	want := map[string]int{
		"latency-over-time": 2, // p50 and p99
		"percentiles":       1,
		"histogram":         2, // per-second p50 and p99
		"split-0":           2, // observed and configured
		"service-graph":     len(r.Hops) + 1,
	}
	require.Len(t, got, len(want), "plots: %v", plots)
	for id, n := range want {
		assert.Equal(t, n, got[id].Series, "series in %s", id)
	}
	locks, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#service-graph .lock').length`))
	require.NoError(t, err)
	assert.Equal(t, 4, locks, "four mTLS edges carry a lock")
	rows, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#checks tbody tr').length`))
	require.NoError(t, err)
	assert.Equal(t, len(r.Checks), rows)

	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(png), "\x89PNG"), "a PNG")
	shot := filepath.Join(artifactDir(t), "report.png")
	require.NoError(t, os.WriteFile(shot, png, 0o644))
	t.Logf("screenshot: %s", shot)
	for _, id := range []string{"latency-over-time", "histogram", "service-graph"} {
		png, err := chromedp.Run(ctx, chromedp.Screenshot(chromedp.CSS("#"+id)))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(artifactDir(t), "report-"+id+".png"), png, 0o644))
	}

	// Let late events arrive, then check the page stayed inside its file.
	time.Sleep(200 * time.Millisecond)
	requests, failed, console, exceptions := events.snapshot()
	assert.Equal(t, []string{"file://" + reportPath}, requests, "the report requests nothing but itself")
	assert.Empty(t, failed, "failed network requests")
	assert.Empty(t, console, "console errors and warnings")
	assert.Empty(t, exceptions, "uncaught exceptions")

	// A failing run with traces: the waterfalls are laid out and drawn,
	// one bar per span, and each failed check's link lands on its trace.
	t.Run("traces", func(t *testing.T) {
		traces := loadFixtureTraces(t)
		tr := tracedResult()
		tr.Traces = traces.Refs(tr)
		traced := filepath.Join(dir, "traced.html")
		var b strings.Builder
		require.NoError(t, HTMLWithTraces(&b, tr, traces))
		require.NoError(t, os.WriteFile(traced, []byte(b.String()), 0o644))
		events.reset()
		require.NoError(t, chromedp.Do(ctx, chromedp.Navigate("file://"+traced), chromedp.WaitVisible(chromedp.CSS("#trace-"+fixSlow+" svg"))))

		raw, err := chromedp.Run(ctx, chromedp.Evaluate[[]byte](plotsJS))
		require.NoError(t, err)
		var plots []plotInfo
		require.NoError(t, json.Unmarshal(raw, &plots))
		spans := map[string]int{}
		for _, p := range plots {
			if !strings.HasPrefix(p.ID, "trace-") {
				continue
			}
			spans[p.ID] = p.Series
			assert.Equal(t, p.Declared, p.Series, "%s: one series per span", p.ID)
			assert.Equal(t, p.Series, p.Drawn, "%s: every span's bar is visible", p.ID)
			assert.Greater(t, p.Width, 600.0, "%s is laid out full width", p.ID)
		}
		assert.Equal(t, map[string]int{"trace-" + fixSlow: 4, "trace-" + fixRetried: 6}, spans)

		// Every bar has an area on screen, deeper rows' labels start further right.
		bars, err := chromedp.Run(ctx, chromedp.Evaluate[[]float64](`Array.from(document.querySelectorAll('#traces ~ .plots .span-bar')).map(e => { const r = e.getBoundingClientRect(); return r.width * r.height; })`))
		require.NoError(t, err)
		require.Len(t, bars, 10)
		for i, a := range bars {
			assert.Greater(t, a, 0.0, "bar %d has an area", i)
		}
		lefts, err := chromedp.Run(ctx, chromedp.Evaluate[[]float64](`Array.from(document.querySelectorAll('#trace-`+fixSlow+` .span-svc')).map(e => e.getBoundingClientRect().left)`))
		require.NoError(t, err)
		require.Len(t, lefts, 4)
		for i := 1; i < len(lefts); i++ {
			assert.Greater(t, lefts[i], lefts[i-1], "row %d is indented under its parent", i)
		}
		marks, err := chromedp.Run(ctx, chromedp.Evaluate[int](`Array.from(document.querySelectorAll('#trace-`+fixRetried+` .annotation')).filter(e => e.getBBox().width > 0).length`))
		require.NoError(t, err)
		assert.Equal(t, 2, marks, "the two retries are drawn as markers")

		// The failed checks' links: the status check's lands on the 503 trace.
		targets, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('#checks a.trace-link')).map(a => a.hash)`))
		require.NoError(t, err)
		assert.Equal(t, []string{"#trace-" + fixSlow, "#trace-" + fixRetried}, targets)
		require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#checks a.trace-link[href="#trace-`+fixRetried+`"]`))))
		var landed struct {
			Hash   string  `json:"hash"`
			Top    float64 `json:"top"`
			Height float64 `json:"height"`
			View   float64 `json:"view"`
		}
		require.Eventually(t, func() bool {
			raw, err := chromedp.Run(ctx, chromedp.Evaluate[[]byte](`(() => { const r = document.getElementById('trace-`+fixRetried+`').getBoundingClientRect(); return {hash: location.hash, top: r.top, height: r.height, view: innerHeight}; })()`))
			return err == nil && json.Unmarshal(raw, &landed) == nil && landed.Hash == "#trace-"+fixRetried
		}, 10*time.Second, 50*time.Millisecond, "the link navigates to the trace")
		assert.GreaterOrEqual(t, landed.Top, 0.0, "the trace is scrolled into view")
		assert.Less(t, landed.Top, landed.View)
		assert.Greater(t, landed.Height, 100.0)

		png, err := chromedp.Run(ctx, chromedp.Screenshot(chromedp.CSS("#trace-"+fixRetried)))
		require.NoError(t, err)
		shot := filepath.Join(artifactDir(t), "report-trace.png")
		require.NoError(t, os.WriteFile(shot, png, 0o644))
		t.Logf("screenshot: %s", shot)
		requests, failed, console, exceptions := events.snapshot()
		assert.Equal(t, []string{"file://" + traced}, requests, "the report requests nothing but itself")
		assert.Empty(t, failed)
		assert.Empty(t, console)
		assert.Empty(t, exceptions)
	})

	// The suite index, with a link to the report.
	t.Run("index", func(t *testing.T) {
		second := synthResult(synthOptions{Seed: 2, P99Scale: 1.3})
		second.Scenario = "canary-slow"
		second.Checks[0].Passed = false
		index := filepath.Join(dir, IndexFile)
		var b strings.Builder
		require.NoError(t, HTMLIndex(&b, &Suite{Started: r.Started, Duration: 140, Scenarios: []*Result{r, second}},
			map[string]string{r.Scenario: HTMLFile}))
		require.NoError(t, os.WriteFile(index, []byte(b.String()), 0o644))
		events.reset()
		require.NoError(t, chromedp.Do(ctx, chromedp.Navigate("file://"+index), chromedp.WaitVisible(chromedp.CSS("#scenarios"))))
		href, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('#scenarios a').href`))
		require.NoError(t, err)
		assert.Equal(t, "file://"+reportPath, href)
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		require.NoError(t, err)
		shot := filepath.Join(artifactDir(t), "index.png")
		require.NoError(t, os.WriteFile(shot, png, 0o644))
		t.Logf("screenshot: %s", shot)
		requests, failed, console, exceptions := events.snapshot()
		assert.Equal(t, []string{"file://" + index}, requests)
		assert.Empty(t, failed)
		assert.Empty(t, console)
		assert.Empty(t, exceptions)
	})

	// The index of meshbench check: a section per resource, each
	// promise's scenario linked to its report.
	t.Run("index by resource", func(t *testing.T) {
		s := checkSuite()
		index := filepath.Join(dir, "index-by-resource.html")
		var b strings.Builder
		require.NoError(t, HTMLIndex(&b, s, map[string]string{"payment-split": HTMLFile}))
		require.NoError(t, os.WriteFile(index, []byte(b.String()), 0o644))
		events.reset()
		require.NoError(t, chromedp.Do(ctx, chromedp.Navigate("file://"+index), chromedp.WaitVisible(chromedp.CSS("#resource-1"))))
		headings, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('section.resource h2')].map(h => h.textContent)`))
		require.NoError(t, err)
		assert.Equal(t, []string{"VirtualService default/payment (vs.yaml:3)", "AuthorizationPolicy default/payment-callers (authz.yaml:1)", "Sidecar default/payment (sidecar.yaml:1)"}, headings)
		href, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('#resource-1 a').href`))
		require.NoError(t, err)
		assert.Equal(t, "file://"+reportPath, href)
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		require.NoError(t, err)
		shot := filepath.Join(artifactDir(t), "index-by-resource.png")
		require.NoError(t, os.WriteFile(shot, png, 0o644))
		t.Logf("screenshot: %s", shot)
		requests, failed, console, exceptions := events.snapshot()
		assert.Equal(t, []string{"file://" + index}, requests)
		assert.Empty(t, failed)
		assert.Empty(t, console)
		assert.Empty(t, exceptions)
	})
}
