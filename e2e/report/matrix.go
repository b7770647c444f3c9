package report

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The matrix is the model both renderings share: kernels (rows) × CNIs ×
// checks (columns, grouped by label), one cell per (kernel, CNI) merging the
// runs that share them.

// groupOrder is the order of the recognised check groups; a spec belongs to
// the first of its labels found here, else to "other".
var groupOrder = []string{"connectivity", "policy", "observability", "baseline", "datapath", "other"}

// collapseAbove is the size above which a group's checks are shown as
// aggregate cells (one per sub-family) rather than one column per check.
const collapseAbove = 40

// maxSubgroups bounds how many aggregate columns a collapsed group splits
// into; with more sub-families it becomes one column.
const maxSubgroups = 8

// kernelKey identifies a matrix row.
type kernelKey struct {
	Name, Release, Provider string
}

func (k kernelKey) String() string {
	s := k.Name
	if k.Release != "" && k.Release != k.Name {
		s += " (" + k.Release + ")"
	}
	return s + " · " + k.Provider
}

func rowOf(r Run) kernelKey {
	rel := r.Kernel
	if rel == "" {
		rel, _ = featureString(r, "kernel")
	}
	name := r.KernelName
	if name == "" {
		switch {
		case r.Provider == "qemu" && rel != "":
			name = majorMinor(rel)
		case r.Provider == "qemu":
			name = "?"
		default:
			name = "host"
		}
	}
	if rel == "" {
		rel = "?"
	}
	prov := r.Provider
	if prov == "" {
		prov = "?"
	}
	return kernelKey{Name: name, Release: rel, Provider: prov}
}

// majorMinor is "6.1" of "6.1.128-cnilab".
func majorMinor(rel string) string {
	parts := strings.SplitN(rel, ".", 3)
	if len(parts) < 2 {
		return rel
	}
	n := 0
	for n < len(parts[1]) && parts[1][n] >= '0' && parts[1][n] <= '9' {
		n++
	}
	return parts[0] + "." + parts[1][:n]
}

// versionLess orders kernel names numerically ("6.1" < "6.12"), "host" first.
func kernelLess(a, b kernelKey) bool {
	if (a.Name == "host") != (b.Name == "host") {
		return a.Name == "host"
	}
	if c := compareVersions(a.Name, b.Name); c != 0 {
		return c < 0
	}
	if c := compareVersions(a.Release, b.Release); c != 0 {
		return c < 0
	}
	return a.Provider < b.Provider
}

// compareVersions compares dotted numbers part by part, numerically where
// both parts are numbers.
func compareVersions(a, b string) int {
	split := func(s string) []string {
		return strings.FieldsFunc(s, func(r rune) bool { return r == '.' || r == '-' || r == '+' || r == '_' })
	}
	pa, pb := split(a), split(b)
	for i := 0; i < len(pa) && i < len(pb); i++ {
		na, ea := strconv.Atoi(pa[i])
		nb, eb := strconv.Atoi(pb[i])
		switch {
		case ea == nil && eb == nil:
			if na != nb {
				return cmpInt(na, nb)
			}
		case ea == nil:
			return -1
		case eb == nil:
			return 1
		default:
			if c := strings.Compare(pa[i], pb[i]); c != 0 {
				return c
			}
		}
	}
	return cmpInt(len(pa), len(pb))
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// groupOf is the check group of a spec and the label after it (its
// sub-family, used when the group is collapsed).
func groupOf(s Spec) (group, sub string) {
	for i, l := range s.Labels {
		if slices.Contains(groupOrder[:len(groupOrder)-1], l) {
			if i+1 < len(s.Labels) && !slices.Contains(groupOrder, s.Labels[i+1]) {
				sub = s.Labels[i+1]
			}
			return l, sub
		}
	}
	if len(s.Labels) > 0 {
		sub = s.Labels[0]
	}
	return "other", sub
}

// result is the merged outcome of one check in one cell.
type result struct {
	State   string
	Reason  string
	Seconds float64
	Run     *Run
}

// rank orders states by how much they matter when runs disagree: a failure
// anywhere is a failure, a pass beats a skip.
func rank(state string) int {
	switch state {
	case Failed:
		return 3
	case Passed:
		return 2
	case Skipped:
		return 1
	}
	return 0
}

// cell is one (kernel, CNI): its runs and the merged result of every check
// they ran.
type cell struct {
	Kernel  kernelKey
	CNI     string
	Runs    []*Run
	Results map[string]*result
	Passed  int
	Failed  int
	Skipped int
}

// Failures are the run-level failures of the cell's runs.
func (c *cell) Failures() []string {
	var out []string
	for _, r := range c.Runs {
		if r.Failure != "" {
			out = append(out, r.Failure)
		}
	}
	return out
}

// OK is the cell's verdict: nothing failed and something passed.
func (c *cell) OK() bool {
	return c.Failed == 0 && len(c.Failures()) == 0 && c.Passed > 0
}

// column is one matrix column: a single check, or an aggregate of the checks
// of one sub-family of a collapsed group.
type column struct {
	Group string
	// Title is the short header text; Full the full name (or the names'
	// family) for the legend and hover.
	Title, Full string
	Names       []string
	Aggregate   bool
}

type colGroup struct {
	Label     string
	Columns   []column
	Collapsed bool
	// Checks is the number of distinct checks in the group.
	Checks int
}

type matrix struct {
	Kernels []kernelKey
	CNIs    []string
	Groups  []colGroup
	cells   map[kernelKey]map[string]*cell
	// order lists the runs in row order (kernel, CNI, start).
	order []*Run
}

func (m *matrix) cell(k kernelKey, cni string) *cell { return m.cells[k][cni] }

// totals sums the merged counts of every cell.
func (m *matrix) totals() (passed, failed, skipped, runFailures int) {
	for _, k := range m.Kernels {
		for _, cni := range m.CNIs {
			if c := m.cell(k, cni); c != nil {
				passed += c.Passed
				failed += c.Failed
				skipped += c.Skipped
				runFailures += len(c.Failures())
			}
		}
	}
	return
}

func (m *matrix) ok() bool {
	seen := false
	for _, k := range m.Kernels {
		for _, cni := range m.CNIs {
			if c := m.cell(k, cni); c != nil {
				seen = true
				if !c.OK() {
					return false
				}
			}
		}
	}
	return seen
}

// runTag tells apart several runs merged into one cell.
func runTag(r *Run) string {
	var parts []string
	if a, ok := r.Datapath["attachMode"]; ok {
		parts = append(parts, fmt.Sprintf("attach %v", a))
	}
	if a, ok := r.Datapath["routingMode"]; ok {
		parts = append(parts, fmt.Sprintf("routing %v", a))
	}
	if r.Nodes != nil {
		parts = append(parts, r.Nodes.Kind+" nodes")
	}
	if r.LabelFilter != "" {
		parts = append(parts, "labels "+r.LabelFilter)
	}
	if !r.Started.IsZero() {
		parts = append(parts, r.Started.UTC().Format("15:04:05"))
	}
	return strings.Join(parts, ", ")
}

func buildMatrix(runs []Run) *matrix {
	m := &matrix{cells: map[kernelKey]map[string]*cell{}}
	cnis := map[string]bool{}
	for i := range runs {
		r := &runs[i]
		k := rowOf(*r)
		if m.cells[k] == nil {
			m.cells[k] = map[string]*cell{}
			m.Kernels = append(m.Kernels, k)
		}
		c := m.cells[k][r.CNI]
		if c == nil {
			c = &cell{Kernel: k, CNI: r.CNI, Results: map[string]*result{}}
			m.cells[k][r.CNI] = c
		}
		c.Runs = append(c.Runs, r)
		cnis[r.CNI] = true
	}
	sort.SliceStable(m.Kernels, func(i, j int) bool { return kernelLess(m.Kernels[i], m.Kernels[j]) })
	for cni := range cnis {
		m.CNIs = append(m.CNIs, cni)
	}
	sort.Strings(m.CNIs)

	// Columns: every check in order of first appearance, by group.
	type checkInfo struct{ group, sub string }
	info := map[string]checkInfo{}
	byGroup := map[string][]string{}
	for _, k := range m.Kernels {
		for _, cni := range m.CNIs {
			c := m.cell(k, cni)
			if c == nil {
				continue
			}
			sort.SliceStable(c.Runs, func(i, j int) bool { return c.Runs[i].Started.Before(c.Runs[j].Started) })
			m.order = append(m.order, c.Runs...)
			for _, r := range c.Runs {
				for _, s := range r.Specs {
					if _, ok := info[s.Name]; !ok {
						g, sub := groupOf(s)
						info[s.Name] = checkInfo{g, sub}
						byGroup[g] = append(byGroup[g], s.Name)
					}
					res := c.Results[s.Name]
					if res == nil || rank(s.State) > rank(res.State) {
						reason := s.Reason
						if len(c.Runs) > 1 && reason != "" {
							reason = "[" + runTag(r) + "] " + reason
						}
						c.Results[s.Name] = &result{State: s.State, Reason: reason, Seconds: s.Seconds, Run: r}
					}
				}
			}
			for _, res := range c.Results {
				switch res.State {
				case Passed:
					c.Passed++
				case Failed:
					c.Failed++
				default:
					c.Skipped++
				}
			}
		}
	}
	for _, g := range groupOrder {
		names := byGroup[g]
		if len(names) == 0 {
			continue
		}
		cg := colGroup{Label: g, Checks: len(names)}
		if len(names) <= collapseAbove {
			strip := commonFirstWord(names, g)
			for _, n := range names {
				cg.Columns = append(cg.Columns, column{Group: g, Title: shortName(n, strip), Full: n, Names: []string{n}})
			}
		} else {
			cg.Collapsed = true
			var subs []string
			bySub := map[string][]string{}
			for _, n := range names {
				s := info[n].sub
				if _, ok := bySub[s]; !ok {
					subs = append(subs, s)
				}
				bySub[s] = append(bySub[s], n)
			}
			if len(subs) < 2 || len(subs) > maxSubgroups {
				cg.Columns = []column{{Group: g, Title: fmt.Sprintf("all %d", len(names)), Full: g, Names: names, Aggregate: true}}
			} else {
				for _, s := range subs {
					title := s
					if title == "" {
						title = "rest"
					}
					cg.Columns = append(cg.Columns, column{Group: g, Title: fmt.Sprintf("%s %d", title, len(bySub[s])), Full: g + " · " + title, Names: bySub[s], Aggregate: true})
				}
			}
		}
		m.Groups = append(m.Groups, cg)
	}
	return m
}

// commonFirstWord is the leading word to drop from a group's check names in
// column headers: the group's own name ("Connectivity pod to pod…"), or the
// word most of its checks start with ("NetworkPolicy …").
func commonFirstWord(names []string, group string) string {
	count := map[string]int{}
	for _, n := range names {
		w, _, _ := strings.Cut(n, " ")
		if strings.EqualFold(w, group) {
			return w
		}
		count[w]++
	}
	best, n := "", 1
	for w, c := range count {
		if c > n || (c == n && w < best && best != "") {
			best, n = w, c
		}
	}
	if n*2 < len(names) {
		return ""
	}
	return best
}

// shortNameLen is the longest column header, in runes.
const shortNameLen = 40

func shortName(name, strip string) string {
	s := name
	if strip != "" {
		if rest, ok := strings.CutPrefix(s, strip+" "); ok {
			s = rest
		}
	}
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) > shortNameLen {
		r := []rune(s)
		s = strings.TrimSpace(string(r[:shortNameLen-1])) + "…"
	}
	return s
}

// aggregate is a cell's tally over a column's checks.
type aggregate struct {
	Passed, Failed, Skipped, Missing int
	FailedNames                      []string
}

func (c *cell) aggregate(col column) aggregate {
	var a aggregate
	for _, n := range col.Names {
		res := c.Results[n]
		switch {
		case res == nil:
			a.Missing++
		case res.State == Passed:
			a.Passed++
		case res.State == Failed:
			a.Failed++
			a.FailedNames = append(a.FailedNames, n)
		default:
			a.Skipped++
		}
	}
	return a
}

// featureString is a datapath feature as text.
func featureString(r Run, key string) (string, bool) {
	f, ok := r.Datapath["features"].(map[string]any)
	if !ok {
		return "", false
	}
	v, ok := f[key]
	if !ok || v == nil {
		return "", false
	}
	return fmt.Sprint(v), true
}

// knownFeatures are the features with their own column, in column order.
var knownFeatures = []struct{ Key, Title string }{
	{"tcx", "tcx"}, {"redirectPeer", "redirect_peer"}, {"ringBuf", "ringbuf"}, {"sctp", "sctp"},
}

// featureRow is one line of the features table: the runs on one kernel that
// reported the same datapath.
type featureRow struct {
	Kernel      kernelKey
	CNIs        []string
	Attach      string
	Routing     string
	Features    []string // by knownFeatures: "yes", "no" or ""
	Other       string   // any other feature, key=value
	Boot        string   // boot seconds, or a range
	HasDatapath bool
}

func featureRows(m *matrix) []featureRow {
	var rows []featureRow
	for _, k := range m.Kernels {
		idx := map[string]int{}
		boots := map[string][]float64{}
		for _, cni := range m.CNIs {
			c := m.cell(k, cni)
			if c == nil {
				continue
			}
			for _, r := range c.Runs {
				fr := featureRow{Kernel: k, Attach: mapString(r.Datapath, "attachMode"), Routing: mapString(r.Datapath, "routingMode"), HasDatapath: r.Datapath != nil}
				for _, f := range knownFeatures {
					v, _ := featureString(*r, f.Key)
					switch v {
					case "true":
						v = "yes"
					case "false":
						v = "no"
					}
					fr.Features = append(fr.Features, v)
				}
				if f, ok := r.Datapath["features"].(map[string]any); ok {
					var other []string
					for key, v := range f {
						if key == "kernel" || slices.ContainsFunc(knownFeatures, func(kf struct{ Key, Title string }) bool { return kf.Key == key }) {
							continue
						}
						other = append(other, fmt.Sprintf("%s=%v", key, v))
					}
					sort.Strings(other)
					fr.Other = strings.Join(other, " ")
				}
				sig := fmt.Sprint(fr.HasDatapath, fr.Attach, fr.Routing, fr.Features, fr.Other)
				i, ok := idx[sig]
				if !ok {
					i = len(rows)
					idx[sig] = i
					rows = append(rows, fr)
				}
				if !slices.Contains(rows[i].CNIs, cni) {
					rows[i].CNIs = append(rows[i].CNIs, cni)
				}
				if r.BootSeconds > 0 {
					boots[sig] = append(boots[sig], r.BootSeconds)
				}
			}
		}
		for sig, i := range idx {
			rows[i].Boot = secondsRange(boots[sig])
		}
	}
	return rows
}

func mapString(m map[string]any, key string) string {
	if v, ok := m[key]; ok && v != nil {
		return fmt.Sprint(v)
	}
	return ""
}

func secondsRange(xs []float64) string {
	if len(xs) == 0 {
		return ""
	}
	lo, hi := slices.Min(xs), slices.Max(xs)
	if fmt.Sprintf("%.1f", lo) == fmt.Sprintf("%.1f", hi) {
		return fmt.Sprintf("%.1f", lo)
	}
	return fmt.Sprintf("%.1f–%.1f", lo, hi)
}

// failure is one line of the failures section.
type failure struct {
	Kernel kernelKey
	CNI    string
	Group  string
	Name   string // empty for a run-level failure
	Reason string
	LogDir string
}

func failures(m *matrix) []failure {
	var out []failure
	for _, cni := range m.CNIs {
		for _, k := range m.Kernels {
			c := m.cell(k, cni)
			if c == nil {
				continue
			}
			for _, r := range c.Runs {
				if r.Failure != "" {
					out = append(out, failure{Kernel: k, CNI: cni, Reason: r.Failure, LogDir: r.LogDir})
				}
			}
			for _, g := range m.Groups {
				for _, col := range g.Columns {
					for _, n := range col.Names {
						if res := c.Results[n]; res != nil && res.State == Failed {
							out = append(out, failure{Kernel: k, CNI: cni, Group: g.Label, Name: n, Reason: res.Reason, LogDir: res.Run.LogDir})
						}
					}
				}
			}
		}
	}
	return out
}

// counts are a run's spec counts, from its specs when it has them.
func counts(r Run) (passed, failed, skipped int) {
	if len(r.Specs) == 0 {
		return r.Passed, r.Failed, r.Skipped
	}
	r.Count()
	return r.Passed, r.Failed, r.Skipped
}
