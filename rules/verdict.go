package rules

// Action is what a verdict tells the door to do.
type Action uint8

// The actions. The zero Action is never returned by Evaluate.
const (
	// ActionAllow lets the request through (CONNECT: tunnel without inspection).
	ActionAllow Action = iota + 1
	// ActionBlock refuses it: a block page for HTTP, 403 for CONNECT, NXDOMAIN or
	// the block address for DNS.
	ActionBlock
	// ActionInspect terminates TLS on a CONNECT with a leaf from the inspection CA
	// and evaluates each request inside; on plain HTTP it means allow.
	ActionInspect
	// ActionTunnel is an explicit "do not inspect" for CONNECT; allow elsewhere.
	ActionTunnel
)

// String returns the action's policy-file name.
func (a Action) String() string {
	switch a {
	case ActionAllow:
		return "allow"
	case ActionBlock:
		return "block"
	case ActionInspect:
		return "inspect"
	case ActionTunnel:
		return "tunnel"
	}
	return "none"
}

// ParseAction maps a policy-file name to an Action; ok is false for unknown names.
func ParseAction(s string) (a Action, ok bool) {
	switch s {
	case "allow":
		return ActionAllow, true
	case "block":
		return ActionBlock, true
	case "inspect":
		return ActionInspect, true
	case "tunnel":
		return ActionTunnel, true
	}
	return 0, false
}

// Verdict is the compiled policy's answer for one request.
//
// Contract for doors: Action is always set. Rule is the deciding rule's name, or
// "default" when no rule matched. Category and Reason are for the block page and
// logs. Profile names the anonymize profile ("" = the door's default). Pool names the
// upstream pool ("" = direct / the route's pool). Cache is the cache policy name
// ("" = the door's default). Quiet asks for a silent block (204/empty) instead of the
// block page, as tracker lists want.
type Verdict struct {
	Action   Action
	Rule     string
	Category string
	Reason   string
	Profile  string
	Pool     string
	Cache    string
	Quiet    bool
}

// Blocked reports whether the verdict refuses the request.
func (v Verdict) Blocked() bool { return v.Action == ActionBlock }

// Evaluator is what a door needs from the policy: facts in, verdict out. *Program
// implements it; tests may use EvaluatorFunc.
type Evaluator interface {
	Evaluate(f *Facts) Verdict
}

// EvaluatorFunc adapts a function to Evaluator.
type EvaluatorFunc func(f *Facts) Verdict

// Evaluate calls fn(f).
func (fn EvaluatorFunc) Evaluate(f *Facts) Verdict { return fn(f) }
