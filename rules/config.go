package rules

// Config is the rules part of a policy file: the lists, groups, schedules and ordered
// rules, and the default action.
type Config struct {
	// Default is the action when no rule matches: allow (default) or block.
	Default string `yaml:"default"`

	// Lists are named blocklists (or allow lists) that rules refer to.
	Lists map[string]*ListConfig `yaml:"lists"`
	// Groups name sets of clients (by CIDR) and users. Wherever the policy names a
	// group (rules' group, forward safesearch_groups and phrase_thresholds), the
	// name may also be a group of the forward proxy's auth group file: a request
	// is in the group when its client address is in the CIDRs here, its user is
	// listed here, or its signed-in user is in that group in the file.
	Groups map[string]*GroupConfig `yaml:"groups"`
	// Schedules name weekly time windows in a time zone, with excluded dates.
	Schedules map[string]*ScheduleConfig `yaml:"schedules"`
	// Rules are evaluated in order; the first that matches decides.
	Rules []*RuleConfig `yaml:"rules"`
}

// ListConfig is one named list file or folder.
type ListConfig struct {
	// Format is domains, hosts, adblock or ut1 (a UT1 blacklist folder).
	Format string `yaml:"format"`
	// Path is the file (or, for ut1, the folder), relative to the policy file.
	Path string `yaml:"path"`
	// Categories, for ut1, are the category folders to load (default: all). Each
	// becomes a list named "NAME/CATEGORY" as well as part of NAME.
	Categories []string `yaml:"categories"`
	// Category is the category reported when this list decides (default: the list's name,
	// or the UT1 category that matched).
	Category string `yaml:"category"`
}

// GroupConfig is a named set of clients and users.
type GroupConfig struct {
	// Clients are CIDRs (or single addresses) whose requests belong to the group.
	Clients []string `yaml:"clients"`
	// Users are authenticated user names that belong to the group.
	Users []string `yaml:"users"`
}

// ScheduleConfig is a weekly set of time windows in a named time zone.
type ScheduleConfig struct {
	// Timezone is an IANA zone name such as Europe/Paris (default UTC).
	Timezone string `yaml:"timezone"`
	// Windows are the weekly windows during which the schedule is active.
	Windows []*WindowConfig `yaml:"windows"`
	// Except lists dates (2026-12-25) or inclusive ranges (2026-12-19..2027-01-04)
	// on which the schedule is never active: holidays.
	Except []string `yaml:"except"`
}

// WindowConfig is one weekly time window.
type WindowConfig struct {
	// Days are mon, tue, wed, thu, fri, sat, sun, or ranges such as mon-fri.
	Days []string `yaml:"days"`
	// From and To are HH:MM local times; To is exclusive and may be 24:00.
	From string `yaml:"from"`
	To   string `yaml:"to"`
}

// RuleConfig is one policy rule. Destination conditions (host, domain, glob, list) are
// alternatives: the rule's destination matches when any of them does. Every other
// condition that is present must hold too. A rule with no condition matches everything.
type RuleConfig struct {
	// Name identifies the rule in logs, block pages and explain output; unique.
	Name string `yaml:"name"`

	Host   []string `yaml:"host"`   // exact host names
	Domain []string `yaml:"domain"` // a domain and all its subdomains
	Glob   []string `yaml:"glob"`   // host globs such as "*.tiktok.*"
	List   []string `yaml:"list"`   // named lists (lists.NAME or lists.NAME/CATEGORY)

	Path     []string `yaml:"path"`     // URL path globs such as "/shorts/*" or "/admin/**"
	Method   []string `yaml:"method"`   // HTTP methods, CONNECT included
	Port     []int    `yaml:"port"`     // destination ports
	Scheme   []string `yaml:"scheme"`   // http or https
	Client   []string `yaml:"client"`   // client CIDRs
	Group    []string `yaml:"group"`    // group names (from groups: or the auth group file)
	User     []string `yaml:"user"`     // authenticated user names
	Door     []string `yaml:"door"`     // forward, reverse, dns
	Schedule string   `yaml:"schedule"` // a schedule name; "!name" means outside it

	// Action is allow, block, inspect or tunnel.
	Action   string `yaml:"action"`
	Category string `yaml:"category"` // reported category (default: the matching list's)
	Reason   string `yaml:"reason"`   // shown on the block page
	Profile  string `yaml:"profile"`  // anonymize profile for matching requests
	Pool     string `yaml:"pool"`     // upstream pool for matching requests
	Cache    string `yaml:"cache"`    // cache policy name for matching requests
	Quiet    bool   `yaml:"quiet"`    // block silently (204) instead of the block page
}
