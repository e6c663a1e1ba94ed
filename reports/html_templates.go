package reports

// The HTML report's templates: inline CSS and SVG, no script (html.go).

import (
	"html/template"
)

var htmlTemplates = template.Must(template.New("").Parse(htmlCSS + htmlSVG + htmlReport + htmlIndex))

const htmlCSS = `{{define "head"}}<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<style>
:root { --fg: #1d2330; --muted: #5f6b7a; --line: #d8dde4; --bg: #ffffff; --panel: #f6f8fa; --pass: #2e7d32; --fail: #c62828; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: var(--fg); background: var(--bg); }
main { max-width: 1360px; margin: 0 auto; padding: 20px 24px 40px; }
header { display: flex; gap: 16px; align-items: flex-start; border-bottom: 1px solid var(--line); padding-bottom: 14px; margin-bottom: 16px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 26px 0 10px; }
h3 { font-size: 14px; margin: 0 0 6px; }
p { margin: 4px 0; }
.muted, .caption { color: var(--muted); }
.caption { font-size: 12.5px; margin-top: 4px; }
.badge { display: inline-block; font-weight: 700; letter-spacing: .04em; border-radius: 6px; padding: 6px 12px; color: #fff; font-size: 15px; white-space: nowrap; }
.badge.pass { background: var(--pass); } .badge.fail { background: var(--fail); }
.tag { display: inline-block; font-weight: 700; font-size: 12px; border-radius: 4px; padding: 1px 7px; color: #fff; }
.tag.pass { background: var(--pass); } .tag.fail { background: var(--fail); } .tag.skip { background: #78909c; }
.error { background: #fdecea; border: 1px solid #f5c2c0; border-radius: 6px; padding: 8px 12px; margin: 10px 0; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; margin: 0; }
dl.facts dt { color: var(--muted); } dl.facts dd { margin: 0; word-break: break-all; }
.panels { display: grid; grid-template-columns: repeat(auto-fit, minmax(300px, 1fr)); gap: 14px; }
.panel { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; }
.plots { display: grid; grid-template-columns: repeat(auto-fill, minmax(560px, 1fr)); gap: 16px; }
figure { margin: 0; background: var(--bg); border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; }
figure.wide { grid-column: 1 / -1; }
figcaption { font-weight: 600; margin-bottom: 4px; }
figure svg.chart { width: 100%; height: auto; display: block; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: 12.5px; color: var(--muted); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.bad { color: var(--fail); }
.test { display: block; color: var(--muted); font-size: 12px; }
.legend { display: flex; flex-wrap: wrap; gap: 4px 14px; font-size: 12.5px; color: var(--muted); margin-bottom: 4px; }
.legend svg { vertical-align: -1px; margin-right: 4px; }
svg text { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; fill: #33404f; }
svg .tick { font-size: 11px; fill: #5f6b7a; }
svg .axis-title { font-size: 12px; fill: #5f6b7a; }
svg .grid { stroke: #e7eaee; stroke-width: 1; }
svg .axis { stroke: #8a96a3; stroke-width: 1; }
svg .series { fill: none; stroke-linejoin: round; stroke-linecap: round; }
svg g.series.bars { stroke: none; }
svg .bar { opacity: .72; }
svg .fault { fill: #f4b400; opacity: .18; }
svg .fault-label { font-size: 11px; fill: #8a6400; }
svg .errmark { fill: #c62828; }
svg .value { font-size: 11.5px; font-weight: 600; }
svg .category { font-size: 12.5px; font-weight: 600; }
svg .marker { stroke-width: 1.5; stroke-dasharray: 5 4; }
svg .marker-label { font-size: 11px; }
svg .node { fill: #ffffff; stroke: #455a64; stroke-width: 1.5; }
svg .node.load { fill: #eceff1; stroke-dasharray: 4 3; }
svg .node-label { font-size: 12.5px; font-weight: 600; }
svg .edge-label { font-size: 11px; paint-order: stroke; stroke: #ffffff; stroke-width: 4px; stroke-linejoin: round; }
svg .lock-bg { fill: #ffffff; } svg .lock-body { fill: #455a64; } svg .lock-shackle { fill: none; stroke: #455a64; stroke-width: 1.6; }
svg .zebra { fill: #f6f8fa; }
svg .tree { fill: none; stroke: #b0bac5; stroke-width: 1; }
svg .span-svc { font-size: 12px; font-weight: 600; }
svg .span-kind, svg .span-dur, svg .span-status { font-size: 11.5px; fill: #5f6b7a; font-variant-numeric: tabular-nums; }
svg .span-name { font-size: 12px; }
svg .span-status.bad { fill: #c62828; font-weight: 600; }
svg .annotation { fill: #8e24aa; stroke: #ffffff; stroke-width: .8; }
svg .tag-retry { fill: #ef6c00; stroke: #ffffff; stroke-width: .8; }
svg .tag-fail { fill: #c62828; stroke: #ffffff; stroke-width: .8; }
a.trace-link { display: block; font-size: 12px; }
a { color: #1565c0; }
</style>{{end}}`

const htmlSVG = `{{define "layer"}}{{range .Rects}}<rect x="{{.X}}" y="{{.Y}}" width="{{.W}}" height="{{.H}}"{{if .RX}} rx="{{.RX}}"{{end}}{{if .Class}} class="{{.Class}}"{{end}}{{if .Fill}} fill="{{.Fill}}"{{end}}>{{if .Title}}<title>{{.Title}}</title>{{end}}</rect>{{end}}
{{- range .Lines}}<line x1="{{.X1}}" y1="{{.Y1}}" x2="{{.X2}}" y2="{{.Y2}}"{{if .Class}} class="{{.Class}}"{{end}}{{if .Stroke}} stroke="{{.Stroke}}"{{end}}/>{{end}}
{{- range .Paths}}<path d="{{.D}}"{{if .Class}} class="{{.Class}}"{{end}}{{if .Stroke}} stroke="{{.Stroke}}"{{end}}{{if .Fill}} fill="{{.Fill}}"{{end}}{{if .Width}} stroke-width="{{.Width}}"{{end}}>{{if .Title}}<title>{{.Title}}</title>{{end}}</path>{{end}}
{{- range .Circles}}<circle cx="{{.X}}" cy="{{.Y}}" r="{{.R}}"{{if .Class}} class="{{.Class}}"{{end}}{{if .Fill}} fill="{{.Fill}}"{{end}}>{{if .Title}}<title>{{.Title}}</title>{{end}}</circle>{{end}}
{{- range .Texts}}<text x="{{.X}}" y="{{.Y}}" text-anchor="{{.Anchor}}"{{if .Class}} class="{{.Class}}"{{end}}{{if .Rotate}} transform="rotate(-90 {{.X}} {{.Y}})"{{end}}>{{.Text}}</text>{{end}}
{{- range .Locks}}<g class="lock" transform="translate({{.X}} {{.Y}})" role="img" aria-label="mTLS"><title>{{.Title}}</title><rect class="lock-bg" x="-2" y="-1.5" width="14" height="15" rx="3"/><path class="lock-shackle" d="M2.5 5 V3.2 a2.5 2.5 0 0 1 5 0 V5"/><rect class="lock-body" x="0.5" y="5" width="9" height="6.5" rx="1.2"/></g>{{end}}
{{- end}}
{{define "plot"}}<figure class="plot{{if ge .W 700.0}} wide{{end}}" id="{{.ID}}">
<figcaption>{{.Title}}</figcaption>
{{- if .Empty}}
<p class="muted">{{.Empty}}</p>
{{- else}}
{{- if .Legend}}
<div class="legend">{{range .Legend}}<span><svg width="18" height="10" aria-hidden="true">{{if eq .Kind "box"}}<rect x="2" y="1" width="14" height="8" fill="{{.Color}}" opacity=".75"/>{{else if eq .Kind "marker"}}<path d="M9 0 V10 M9 2 l3 3 l-3 3 l-3 -3 Z" stroke="{{.Color}}" fill="{{.Color}}"/>{{else if eq .Kind "dash"}}<line x1="1" y1="5" x2="17" y2="5" stroke="{{.Color}}" stroke-width="1.5" stroke-dasharray="4 3"/>{{else}}<line x1="1" y1="5" x2="17" y2="5" stroke="{{.Color}}" stroke-width="2.5"/>{{end}}</svg>{{.Label}}</span>{{end}}</div>
{{- end}}
<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {{.W}} {{.H}}" width="{{.W}}" height="{{.H}}" role="img" aria-label="{{.Title}}" data-plot="{{.ID}}" data-series="{{len .Series}}">
<g class="back">{{template "layer" .Back}}</g>
{{range .Series}}{{if .Line}}<path class="series {{.Class}}" data-name="{{.Name}}" d="{{.Line.D}}" stroke="{{.Line.Stroke}}" stroke-width="{{.Line.Width}}" fill="none"><title>{{.Line.Title}}</title></path>
{{else}}<g class="series {{.Class}}" data-name="{{.Name}}">{{template "layer" .}}</g>
{{end}}{{end -}}
<g class="front">{{template "layer" .Front}}</g>
</svg>
{{- if .Caption}}
<p class="caption">{{.Caption}}</p>
{{- end}}
{{- end}}
</figure>
{{end}}`

const htmlReport = `{{define "report"}}<!DOCTYPE html>
<html lang="en">
<head>
{{template "head"}}
<title>meshbench: {{.R.Scenario}} — {{if .Passed}}PASS{{else}}FAIL{{end}}</title>
</head>
<body>
<main>
<header>
<span class="badge {{if .Passed}}pass{{else}}fail{{end}}" id="verdict">{{if .Passed}}PASS{{else}}FAIL{{end}}</span>
<div>
<h1>{{.R.Scenario}}</h1>
{{- if .R.Description}}
<p>{{.R.Description}}</p>
{{- end}}
<p class="muted">{{range $i, $m := .Meta}}{{if $i}} · {{end}}{{$m.K}} {{$m.V}}{{end}}</p>
</div>
</header>
{{- if .R.Error}}
<div class="error"><strong>Run error:</strong> {{.R.Error}}</div>
{{- end}}
<section class="panels">
<div class="panel"><h3>Environment</h3><dl class="facts">{{range .Env}}<dt>{{.K}}</dt><dd>{{.V}}</dd>{{end}}</dl></div>
<div class="panel"><h3>Load</h3><dl class="facts">{{range .Load}}<dt>{{.K}}</dt><dd>{{.V}}</dd>{{end}}</dl></div>
<div class="panel"><h3>Latency (ms) and status</h3>
<table><tr>{{range .Latency}}<th class="num">{{.K}}</th>{{end}}</tr><tr>{{range .Latency}}<td class="num">{{.V}}</td>{{end}}</tr></table>
<p style="margin-top:8px">success rate <strong>{{.Success}}</strong></p>
{{- if .Codes}}
<table><tr><th>code</th><th class="num">count</th><th class="num">share</th></tr>{{range .Codes}}<tr><td{{if .Bad}} class="bad"{{end}}>{{.Code}}</td><td class="num">{{.Count}}</td><td class="num">{{.Share}}</td></tr>{{end}}</table>
{{- end}}
{{- if .Errors}}
<table><tr><th>transport error</th><th class="num">count</th></tr>{{range .Errors}}<tr><td class="bad">{{.Code}}</td><td class="num">{{.Count}}</td></tr>{{end}}</table>
{{- end}}
</div>
</section>

<h2>Checks</h2>
{{- if .Checks}}
<table id="checks">
<thead><tr><th>check</th><th>verdict</th><th class="num">N</th><th class="num">p-value</th><th>summary</th></tr></thead>
<tbody>
{{- range .Checks}}
<tr><td>{{.Name}}</td><td><span class="tag {{if .Passed}}pass{{else}}fail{{end}}">{{if .Passed}}PASS{{else}}FAIL{{end}}</span></td><td class="num">{{.N}}</td><td class="num">{{.PValue}}</td><td>{{.Summary}}{{if .Test}}<span class="test">test: {{.Test}}</span>{{end}}{{if .TraceAnchor}}<a class="trace-link" href="#{{.TraceAnchor}}">trace {{.TraceID}}</a>{{else if .NoTrace}}<span class="test">no trace: {{.NoTrace}}</span>{{end}}</td></tr>
{{- end}}
</tbody>
</table>
{{- else}}
<p class="muted">No checks.</p>
{{- end}}

{{- if .Steps}}
<h2>Load plan steps</h2>
<p class="muted">Each step's requests are those its pacer planned in its window, their latency counted from the planned send; achieved is the rate they were actually sent at.</p>
{{- if .StepBreak}}
<p id="step-break">{{.StepBreak}}</p>
{{- end}}
<table id="steps">
<thead><tr><th class="num">step</th><th>window</th><th class="num">rate asked</th><th class="num">achieved</th><th class="num">requests</th><th class="num">success</th><th class="num">p50</th><th class="num">p90</th><th class="num">p99</th><th class="num">p99.9</th></tr></thead>
<tbody>
{{- range .Steps}}
<tr><td class="num">{{.Index}}</td><td>{{.Window}}</td><td class="num">{{.Target}}</td><td class="num">{{.Achieved}}</td><td class="num">{{.Requests}}</td><td class="num">{{.Success}}</td><td class="num">{{.P50}}</td><td class="num">{{.P90}}</td><td class="num{{if .Over}} bad{{end}}">{{.P99}}</td><td class="num">{{.P999}}</td></tr>
{{- end}}
</tbody>
</table>
{{- end}}

<h2>Latency</h2>
<div class="plots">
{{template "plot" .Timeline}}
{{template "plot" .Percentiles}}
{{template "plot" .Histogram}}
</div>

<h2>Traffic split</h2>
{{- if .Splits}}
<div class="plots">
{{range .Splits}}{{template "plot" .}}{{end}}
</div>
{{- else}}
<p class="muted">{{.SplitNote}}</p>
{{- end}}

<h2>Service graph</h2>
<div class="plots">
{{template "plot" .Graph}}
</div>
{{- with .Traces}}

<h2 id="traces">Traces</h2>
{{- if .Error}}
<p class="muted">No traces drawn: {{.Error}}</p>
{{- else}}
<p class="muted">{{.Count}} sampled traces ({{.Spans}} spans) in {{.File}}, which Jaeger and Zipkin import. One row per span, children under their parent; bars to scale from the trace's start.</p>
<div class="plots">
{{range .Waterfalls}}{{template "plot" .}}{{end}}
</div>
{{- end}}
{{- end}}
</main>
</body>
</html>
{{end}}`

const htmlIndex = `{{define "index"}}<!DOCTYPE html>
<html lang="en">
<head>
{{template "head"}}
<title>meshbench: {{.Passed}} of {{.Total}} scenarios passed</title>
</head>
<body>
<main>
<header>
<span class="badge {{if .AllPassed}}pass{{else}}fail{{end}}" id="verdict">{{if .AllPassed}}PASS{{else}}FAIL{{end}}</span>
<div>
<h1>meshbench: {{.Passed}} of {{.Total}} scenarios passed</h1>
<p class="muted">{{if .Started}}started {{.Started}} · {{end}}took {{.Duration}} s</p>
</div>
</header>
{{- range .Sections}}
<section class="resource" id="{{.ID}}">
<h2>{{.Heading}}</h2>
<table class="promises">
<thead><tr><th>source</th><th>promise</th><th>verdict</th><th>scenario</th><th class="num">checks passed</th><th class="num">requests</th><th class="num">success</th><th class="num">p99</th></tr></thead>
<tbody>
{{- range .Checks}}
{{- if .Row}}
<tr class="checked"><td>{{.Source}}</td><td>{{.Promise}}</td><td><span class="tag {{if .Row.Passed}}pass{{else}}fail{{end}}">{{if .Row.Passed}}PASS{{else}}FAIL{{end}}</span></td><td><a href="{{.Row.Link}}">{{.Scenario}}</a>{{if .Row.Error}}<span class="test bad">run error: {{.Row.Error}}</span>{{end}}</td><td class="num">{{.Row.Checks}}</td><td class="num">{{.Row.Requests}}</td><td class="num">{{.Row.Success}}</td><td class="num">{{.Row.P99}}</td></tr>
{{- else}}
<tr class="checked"><td>{{.Source}}</td><td>{{.Promise}}</td><td><span class="tag skip">NOT RUN</span></td><td colspan="5">{{.Scenario}}</td></tr>
{{- end}}
{{- end}}
{{- range .NotChecked}}
<tr class="not-checked"><td>{{.Source}}</td><td>{{.Promise}}</td><td><span class="tag skip">NOT CHECKED</span></td><td colspan="5">{{.Why}}</td></tr>
{{- end}}
</tbody>
</table>
</section>
{{- end}}
{{- if .Rows}}
{{- if .Sections}}
<h2>Other scenarios</h2>
{{- end}}
<table id="scenarios">
<thead><tr><th>scenario</th><th>verdict</th><th class="num">checks passed</th><th class="num">requests</th><th class="num">success</th><th class="num">p50</th><th class="num">p99</th><th>description</th></tr></thead>
<tbody>
{{- range .Rows}}
<tr><td><a href="{{.Link}}">{{.Name}}</a></td><td><span class="tag {{if .Passed}}pass{{else}}fail{{end}}">{{if .Passed}}PASS{{else}}FAIL{{end}}</span></td><td class="num">{{.Checks}}</td><td class="num">{{.Requests}}</td><td class="num">{{.Success}}</td><td class="num">{{.P50}}</td><td class="num">{{.P99}}</td><td>{{.Description}}{{if .Error}}<span class="test bad">run error: {{.Error}}</span>{{end}}</td></tr>
{{- end}}
</tbody>
</table>
{{- end}}
{{- if and .NotChecked (not .Sections)}}
<h2>Not checked</h2>
<table>
<thead><tr><th>source</th><th>resource</th><th>promise</th><th>why</th></tr></thead>
<tbody>
{{- range .NotChecked}}
<tr><td>{{.Source}}</td><td>{{.Resource}}</td><td>{{.Promise}}</td><td>{{.Why}}</td></tr>
{{- end}}
</tbody>
</table>
{{- end}}
{{- if .Inferred}}
<h2>Inferred from the input</h2>
<table>
<thead><tr><th>kind</th><th>name</th><th>source</th><th>detail</th></tr></thead>
<tbody>
{{- range .Inferred}}
<tr><td>{{.Kind}}</td><td>{{.Name}}</td><td>{{.Source}}</td><td>{{.Detail}}</td></tr>
{{- end}}
</tbody>
</table>
{{- end}}
</main>
</body>
</html>
{{end}}`
