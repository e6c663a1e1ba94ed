package reports

// A suite of meshbench check is reported one section per resource: the
// promises of each resource the input holds, with the verdict of the
// scenario that exercises each, or why none does.

// resourceSection is one resource's part of a suite's reports.
type resourceSection struct {
	// Heading is "Kind namespace/name (file:line)".
	Heading  string
	Resource string
	Source   string
	Checks   []sectionCheck
	// NotChecked are the resource's promises no scenario exercises.
	NotChecked []NotChecked
}

// sectionCheck is a promise and its scenario's result; Result is nil
// when the suite has no result of that name.
type sectionCheck struct {
	ResourceCheck
	Result *Result
}

// sections groups a suite by resource: a section per Resource, then one
// per resource that only NotChecked names, in the order first named.
// rest are the scenarios no resource claims. Both are nil when the suite
// has no Resources (meshbench run).
func sections(s *Suite) (secs []resourceSection, rest []*Result) {
	if len(s.Resources) == 0 {
		return nil, nil
	}
	results := map[string]*Result{}
	for _, r := range s.Scenarios {
		if r != nil {
			results[r.Scenario] = r
		}
	}
	claimed := map[string]bool{}
	index := map[string]int{}
	for _, res := range s.Resources {
		sec := resourceSection{Heading: heading(res.Resource, res.Source), Resource: res.Resource, Source: res.Source}
		for _, c := range res.Checks {
			sec.Checks = append(sec.Checks, sectionCheck{ResourceCheck: c, Result: results[c.Scenario]})
			claimed[c.Scenario] = true
		}
		index[res.Resource] = len(secs)
		secs = append(secs, sec)
	}
	for _, n := range s.NotChecked {
		i, ok := index[n.Resource]
		if !ok {
			i = len(secs)
			index[n.Resource] = i
			secs = append(secs, resourceSection{Heading: heading(n.Resource, n.Source), Resource: n.Resource, Source: n.Source})
		}
		secs[i].NotChecked = append(secs[i].NotChecked, n)
	}
	for _, r := range s.Scenarios {
		if r != nil && !claimed[r.Scenario] {
			rest = append(rest, r)
		}
	}
	return secs, rest
}

func heading(resource, source string) string {
	if source == "" {
		return resource
	}
	return resource + " (" + source + ")"
}
