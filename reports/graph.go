package reports

// The HTML report's service graph.

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

type graphEdge struct {
	from, to string
	rps, ok  float64
	p99      string
	mtls     bool
	flags    string
	requests int
	service  string
}

// graphPlot draws the service graph, Kiali-style: one box per workload in
// Result.Hops plus a "load" node that feeds the first source; columns left
// to right by depth from the load; each edge labelled with requests per
// second, success rate and p99, and a lock where the hop used mTLS.
func graphPlot(r *Result) svgPlot {
	const nodeH, colGap, rowGap, maxLabel = 34.0, 170.0, 78.0, 24
	if len(r.Hops) == 0 {
		p := frame{W: 640, H: 100}.plot("service-graph", "Service graph")
		p.Empty = "The result has no service-graph edges (the sidecars' metrics were not read)."
		return p
	}
	// Nodes in order of first appearance, which keeps v1 above v2.
	var order []string
	seen := map[string]bool{}
	add := func(n string) {
		if !seen[n] {
			seen[n] = true
			order = append(order, n)
		}
	}
	const load = loadNode
	add(load)
	isDest := map[string]bool{}
	for _, h := range r.Hops {
		isDest[h.Destination] = true
	}
	var edges []graphEdge
	root := ""
	for _, h := range r.Hops {
		if !isDest[h.Source] {
			root = h.Source
			break
		}
	}
	if root == "" {
		root = r.Hops[0].Source // every source is also called: a cycle
	}
	add(root)
	edges = append(edges, graphEdge{from: load, to: root, rps: r.Load.AchievedRate, ok: r.Status.SuccessRate,
		p99: fmtNum(r.Latency.P99) + " ms", requests: r.Load.Requests, service: r.Load.Target})
	for _, h := range r.Hops {
		add(h.Source)
		add(h.Destination)
		var flags []string
		for _, k := range sortedKeys(h.Flags) {
			flags = append(flags, fmt.Sprintf("%s×%d", k, h.Flags[k]))
		}
		edges = append(edges, graphEdge{from: h.Source, to: h.Destination, rps: h.RPS, ok: h.SuccessRate,
			p99: "≤" + fmtNum(h.P99) + " ms", mtls: h.MTLS, flags: strings.Join(flags, " "), requests: h.Requests, service: h.Service})
	}

	// Depth by breadth-first search from the load; nodes it cannot reach
	// start a new search one column right of the load.
	depth := map[string]int{}
	out := map[string][]string{}
	for _, e := range edges {
		out[e.from] = append(out[e.from], e.to)
	}
	bfs := func(start string, d int) {
		depth[start] = d
		queue := []string{start}
		for len(queue) > 0 {
			n := queue[0]
			queue = queue[1:]
			for _, m := range out[n] {
				if _, ok := depth[m]; !ok {
					depth[m] = depth[n] + 1
					queue = append(queue, m)
				}
			}
		}
	}
	bfs(load, 0)
	for _, n := range order {
		if _, ok := depth[n]; !ok {
			bfs(n, 1)
		}
	}
	// Boxes fit the longest name, at about 7.5 px a rune of the bold label.
	nodeW := 110.0
	for _, n := range order {
		nodeW = math.Max(nodeW, 7.5*float64(min(len([]rune(n)), maxLabel))+18)
	}
	maxDepth, rows := 0, map[int]int{}
	pos := map[string][2]float64{} // column, row
	for _, n := range order {
		d := depth[n]
		pos[n] = [2]float64{float64(d), float64(rows[d])}
		rows[d]++
		maxDepth = max(maxDepth, d)
	}
	maxRows := 0
	for _, n := range rows {
		maxRows = max(maxRows, n)
	}
	f := frame{L: 16, R: 16, T: 16, B: 16}
	for _, e := range edges {
		if depth[e.to] <= depth[e.from] {
			f.B = 72 // room for the loops of backward edges under the boxes
		}
	}
	f.W = math.Max(640, f.L+f.R+nodeW+float64(maxDepth)*(nodeW+colGap))
	f.H = f.T + f.B + float64(maxRows)*nodeH + float64(maxRows-1)*(rowGap-nodeH)
	p := f.plot("service-graph", "Service graph")
	// Columns with fewer nodes are centred vertically.
	box := func(n string) (x, y float64) {
		c := pos[n]
		k := float64(rows[int(c[0])])
		span := k*nodeH + (k-1)*(rowGap-nodeH)
		y0 := f.T + (f.H-f.T-f.B-span)/2
		return f.L + c[0]*(nodeW+colGap), y0 + c[1]*rowGap
	}
	maxBottom := 0.0
	for _, n := range order {
		_, y := box(n)
		maxBottom = math.Max(maxBottom, y+nodeH)
	}
	maxRPS := 0.0
	for _, e := range edges {
		maxRPS = math.Max(maxRPS, e.rps)
	}
	// Spread the ends of several edges leaving or entering one node.
	outIdx, inIdx, outN, inN := map[string]int{}, map[string]int{}, map[string]int{}, map[string]int{}
	for _, e := range edges {
		outN[e.from]++
		inN[e.to]++
	}
	for _, e := range edges {
		fx, fy := box(e.from)
		tx, ty := box(e.to)
		spread := func(i, n int) float64 { return (float64(i) - float64(n-1)/2) * 8 }
		x1, y1 := fx+nodeW, fy+nodeH/2+spread(outIdx[e.from], outN[e.from])
		x2, y2 := tx, ty+nodeH/2+spread(inIdx[e.to], inN[e.to])
		outIdx[e.from]++
		inIdx[e.to]++
		color := colPass
		switch errRate := 1 - e.ok; {
		case e.requests == 0:
			color = colNeutral
		case errRate > 0.05:
			color = colFail
		case errRate > 0.001:
			color = colWarn
		}
		width := 1.5
		if maxRPS > 0 {
			width += 3 * math.Log1p(e.rps) / math.Log1p(maxRPS)
		}
		var d string
		var lx, ly float64
		if x2 > x1 { // forward: an S curve
			cx := (x2 - x1) / 2
			d = fmt.Sprintf("M%s %s C%s %s %s %s %s %s", px(x1), px(y1), px(x1+cx), px(y1), px(x2-cx), px(y2), px(x2-9), px(y2))
			// Labels of edges fanning out of one node sit near their
			// destinations, those of edges fanning into one node near
			// their sources, so that they stay apart.
			t := 0.5
			if outN[e.from] > 1 {
				t = 0.62
			} else if inN[e.to] > 1 {
				t = 0.38
			}
			lx, ly = x1+bezierX(t)*(x2-x1), y1+bezierY(t, y1, y2)
		} else { // backward or same column: loop under every box
			below := maxBottom + 24
			x2 = tx + nodeW/2
			y2 = ty + nodeH + 9
			d = fmt.Sprintf("M%s %s C%s %s %s %s %s %s", px(x1), px(y1), px(x1+60), px(below), px(x2), px(below), px(x2), px(y2))
			// the label goes under the loop's lowest point
			lx, ly = (x1+60+x2)/2, 0.75*below+0.125*(y1+y2)+30
		}
		label := fmt.Sprintf("%s rps · %s", fmtNum(e.rps), successLabel(e.ok))
		tip := fmt.Sprintf("%s → %s (%s): %d requests, %s req/s, success %s, p99 %s", nodeName(e.from), e.to, orDash(e.service), e.requests, fmtNum(e.rps), successLabel(e.ok), e.p99)
		if e.mtls {
			tip += ", 🔒 mTLS"
		}
		if e.flags != "" {
			tip += ", response flags " + e.flags
		}
		s := svgSeries{Name: nodeName(e.from) + " → " + e.to, Class: "edge"}
		s.Paths = append(s.Paths, svgPath{D: d, Class: "edge-line", Stroke: color, Fill: "none", Width: px(width), Title: tip})
		if x2 > x1 {
			s.Paths = append(s.Paths, svgPath{D: fmt.Sprintf("M%s %s l-10 -5 l0 10 Z", px(x2), px(y2)), Stroke: color, Fill: color})
		} else {
			s.Paths = append(s.Paths, svgPath{D: fmt.Sprintf("M%s %s l-5 10 l10 0 Z", px(x2), px(y2-9)), Stroke: color, Fill: color})
		}
		second := "p99 " + e.p99
		if e.flags != "" {
			second += " · " + e.flags
		}
		// The two lines start at one x, about centred on the label's
		// point (6.2 px a rune is a guess at the width; SVG cannot measure
		// text without script). The lock goes left of that start, so a
		// wrong guess moves the label a little but never overlaps.
		w := 6.2 * float64(max(len([]rune(label)), len([]rune(second))))
		x0 := lx - w/2
		if e.mtls {
			x0 += 8
			s.Locks = append(s.Locks, svgLock{X: px(x0 - 15), Y: px(ly - 26), Title: "🔒 mTLS: " + nodeName(e.from) + " → " + e.to})
		}
		s.text(x0, ly-16, "start", "edge-label", label)
		s.text(x0, ly-3, "start", "edge-label", second)
		p.Series = append(p.Series, s)
	}
	for _, n := range order {
		x, y := box(n)
		class := "node"
		if n == load {
			class = "node load"
		}
		p.Front.Rects = append(p.Front.Rects, svgRect{X: px(x), Y: px(y), W: px(nodeW), H: nodeH, RX: 6, Class: class, Title: n})
		label := n
		if len([]rune(label)) > maxLabel {
			label = string([]rune(label)[:maxLabel-1]) + "…"
		}
		if n == load {
			label = "load"
			p.Front.Rects[len(p.Front.Rects)-1].Title = fmt.Sprintf("load generator: %s req/s against %s", num(r.Load.AchievedRate), orDash(r.Load.Target))
		}
		p.Front.text(x+nodeW/2, y+nodeH/2+4, "middle", "node-label", label)
	}
	mtls := 0
	for _, e := range edges {
		if e.mtls {
			mtls++
		}
	}
	p.Legend = []legendItem{{"healthy (≤0.1% errors)", colPass, "line"}, {"degraded (≤5%)", colWarn, "line"}, {"failing (>5%)", colFail, "line"}}
	p.Caption = fmt.Sprintf("Workloads and the requests between them as the sidecars' source-side metrics counted them (%d edges, %d with mTLS, marked with a lock). "+
		"Edge labels: requests per second · success rate, then p99 (hops: upper bound of the histogram bucket; load: the HDR p99 the load generator measured). "+
		"Line width grows with the request rate.", len(edges), mtls)
	return p
}

// successLabel writes a success rate in percent with two decimals, rounded
// down so that a rate below 1 never shows as 100%.
func successLabel(f float64) string {
	return strconv.FormatFloat(math.Floor(f*10000)/100, 'f', -1, 64) + "%"
}

// unionKeys returns the keys of a and b, sorted.
func unionKeys[A, B any](a map[string]A, b map[string]B) []string {
	seen := make(map[string]bool, len(a)+len(b))
	var keys []string
	for k := range a {
		seen[k] = true
		keys = append(keys, k)
	}
	for k := range b {
		if !seen[k] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}

// loadNode is the service graph's node for the load generator: not a valid
// workload name, so that no workload collides with it.
const loadNode = "(load)"

func nodeName(n string) string {
	if n == loadNode {
		return "load"
	}
	return n
}

// bezierX is how far along (0 to 1) the S curve with control points at
// half the width has come horizontally at parameter t.
func bezierX(t float64) float64 {
	// control points 0, 1/2, 1/2, 1: B(t) = 1.5t(1-t) + t³
	return 1.5*t*(1-t) + t*t*t
}

// bezierY is the offset from y1 of the S curve from (.., y1) to (.., y2)
// with horizontal tangents, at parameter t.
func bezierY(t, y1, y2 float64) float64 {
	// control points y1, y1, y2, y2: B(t) = y1 + (y2-y1)(3t² - 2t³)
	return (y2 - y1) * (3*t*t - 2*t*t*t)
}
