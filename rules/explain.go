package rules

// Step is one rule's outcome while explaining a verdict.
type Step struct {
	Rule    string // the rule's name
	Matched bool   // whether it matched (only the last step can be true)
	Failed  string // the first condition that did not hold: door, method, scheme, port, client, user, group, schedule, path, destination
}

// Explain evaluates f like Evaluate and also returns, for each rule tried in order,
// why it did or did not match: what `portcullis policy explain` prints.
func (p *Program) Explain(f *Facts) (Verdict, []Step) {
	var steps []Step
	for _, r := range p.rules {
		failed, category, ok := r.check(p, f)
		steps = append(steps, Step{Rule: r.name, Matched: ok, Failed: failed})
		if ok {
			v := r.verdict
			if v.Category == "" {
				v.Category = category
			}
			return v, steps
		}
	}
	return p.def, steps
}
