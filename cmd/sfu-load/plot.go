package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"sort"
	"strings"
)

// plotMain is `sfu-load plot [files...]`: it reads --json summaries (one
// after the other, from the files or stdin) and writes an SVG of the server's CPU time
// per forwarded packet and the latency against the number of subscribers,
// the median of the runs at each point.
func plotMain(args []string, stdout io.Writer) error {
	var sums []Summary
	read := func(r io.Reader) error {
		dec := json.NewDecoder(r)
		for {
			var s Summary
			err := dec.Decode(&s)
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return fmt.Errorf("not a summary: %w", err)
			}
			sums = append(sums, s)
		}
	}
	if len(args) == 0 {
		if err := read(os.Stdin); err != nil {
			return err
		}
	}
	for _, name := range args {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		err = read(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	pts := medians(sums)
	if len(pts) == 0 {
		return fmt.Errorf("no summary with server figures")
	}
	_, err := io.WriteString(stdout, renderSVG(pts))
	return err
}

// point is the median of the runs at one subscriber count.
type point struct {
	subs           int
	cpuUs          float64
	p50Ms, p99Ms   float64
	rssPerSubKB    float64
	lossPct, runsN float64
}

func medians(sums []Summary) []point {
	by := map[int][]Summary{}
	for _, s := range sums {
		if s.Server != nil && s.Server.CPUMicrosPerPacket > 0 {
			by[s.Config.Subscribers] = append(by[s.Config.Subscribers], s)
		}
	}
	var out []point
	for subs, runs := range by {
		med := func(f func(Summary) float64) float64 {
			v := make([]float64, len(runs))
			for i, r := range runs {
				v[i] = f(r)
			}
			slices.Sort(v)
			if len(v)%2 == 1 {
				return v[len(v)/2]
			}
			return (v[len(v)/2-1] + v[len(v)/2]) / 2
		}
		out = append(out, point{
			subs:        subs,
			cpuUs:       med(func(s Summary) float64 { return s.Server.CPUMicrosPerPacket }),
			p50Ms:       med(func(s Summary) float64 { return s.LatencyMs.P50 }),
			p99Ms:       med(func(s Summary) float64 { return s.LatencyMs.P99 }),
			rssPerSubKB: med(func(s Summary) float64 { return s.Server.RSSPerSubscriptionKB }),
			lossPct:     med(func(s Summary) float64 { return s.Loss.CounterPct }),
			runsN:       float64(len(runs)),
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].subs < out[j].subs })
	return out
}

// renderSVG draws two charts side by side, the subscriber count on a log
// scale: CPU-µs per forwarded packet, and latency p50/p99 (on a log scale
// too: it spans milliseconds to the seconds of a saturated machine).
func renderSVG(pts []point) string {
	const w, h, pad = 420, 300, 50
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", 2*w, h+30)
	b.WriteString(`<rect width="100%" height="100%" fill="white"/>` + "\n")
	chart := func(x0 int, title, unit string, logY bool, series []struct {
		name, color string
		v           func(point) float64
	}) {
		maxY, minY := 0.0, math.Inf(1)
		for _, s := range series {
			for _, p := range pts {
				maxY = math.Max(maxY, s.v(p))
				if v := s.v(p); v > 0 {
					minY = math.Min(minY, v)
				}
			}
		}
		maxY = niceCeil(maxY)
		// On a log scale the axis spans whole decades.
		lo, hi := 0.0, 1.0
		if logY {
			if math.IsInf(minY, 1) {
				minY = 1
			}
			lo, hi = math.Floor(math.Log10(minY)), math.Ceil(math.Log10(maxY))
			if hi <= lo {
				hi = lo + 1
			}
		}
		minX, maxX := math.Log10(float64(pts[0].subs)), math.Log10(float64(pts[len(pts)-1].subs))
		if maxX == minX {
			maxX = minX + 1
		}
		px := func(subs int) float64 {
			return float64(x0+pad) + (math.Log10(float64(subs))-minX)/(maxX-minX)*float64(w-2*pad)
		}
		py := func(v float64) float64 {
			frac := v / maxY
			if logY {
				frac = (math.Log10(math.Max(v, math.Pow(10, lo))) - lo) / (hi - lo)
			}
			return float64(h-pad) - frac*float64(h-2*pad)
		}
		var ticks []float64
		if logY {
			for e := lo; e <= hi; e++ {
				ticks = append(ticks, math.Pow(10, e))
			}
		} else {
			for i := 0; i <= 4; i++ {
				ticks = append(ticks, maxY*float64(i)/4)
			}
		}
		fmt.Fprintf(&b, `<text x="%d" y="20" font-weight="bold">%s</text>`+"\n", x0+pad, title)
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>`+"\n", x0+pad, h-pad, x0+w-pad, h-pad)
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>`+"\n", x0+pad, pad, x0+pad, h-pad)
		for _, v := range ticks {
			fmt.Fprintf(&b, `<text x="%d" y="%.0f" text-anchor="end">%g</text>`+"\n", x0+pad-4, py(v)+4, v)
			fmt.Fprintf(&b, `<line x1="%d" y1="%.0f" x2="%d" y2="%.0f" stroke="#ddd"/>`+"\n", x0+pad, py(v), x0+w-pad, py(v))
		}
		for _, p := range pts {
			fmt.Fprintf(&b, `<text x="%.0f" y="%d" text-anchor="middle">%d</text>`+"\n", px(p.subs), h-pad+16, p.subs)
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">subscribers</text>`+"\n", x0+w/2, h-pad+32)
		fmt.Fprintf(&b, `<text x="%d" y="%d" transform="rotate(-90 %d %d)" text-anchor="middle">%s</text>`+"\n", x0+14, h/2, x0+14, h/2, unit)
		for i, s := range series {
			var path strings.Builder
			for j, p := range pts {
				cmd := "L"
				if j == 0 {
					cmd = "M"
				}
				fmt.Fprintf(&path, "%s%.1f,%.1f ", cmd, px(p.subs), py(s.v(p)))
			}
			fmt.Fprintf(&b, `<path d="%s" fill="none" stroke="%s" stroke-width="2"/>`+"\n", path.String(), s.color)
			for _, p := range pts {
				fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`+"\n", px(p.subs), py(s.v(p)), s.color)
			}
			fmt.Fprintf(&b, `<text x="%d" y="%d" fill="%s">%s</text>`+"\n", x0+w-pad-90, pad+14*i, s.color, s.name)
		}
	}
	type series = struct {
		name, color string
		v           func(point) float64
	}
	chart(0, "Server CPU per forwarded packet", "µs", false, []series{{"CPU-µs/packet", "#1f6feb", func(p point) float64 { return p.cpuUs }}})
	chart(w, "Latency through the server", "ms (log scale)", true, []series{
		{"p50", "#2da44e", func(p point) float64 { return p.p50Ms }},
		{"p99", "#cf222e", func(p point) float64 { return p.p99Ms }},
	})
	b.WriteString("</svg>\n")
	return b.String()
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}
