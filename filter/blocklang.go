package filter

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
)

//go:embed blockpage/*.json
var blockLangFS embed.FS

// BlockText is one language's wording of the block page, the T field of a block
// page template ({{.T.Title}}). Every shipped translation fills every field.
type BlockText struct {
	Title      string `json:"title"`       // the heading: "This page is blocked"
	Blocked    string `json:"blocked"`     // the title's prefix: "Blocked"
	Lead       string `json:"lead"`        // the sentence under the heading
	TextHeader string `json:"text_header"` // the plain-text page's first line
	Address    string `json:"address"`     // label of the URL
	Category   string `json:"category"`    // label of the category
	Reason     string `json:"reason"`      // label of the reason
	Rule       string `json:"rule"`        // label of the rule
	User       string `json:"user"`        // label of the signed-in user
	Time       string `json:"time"`        // label of the time
	Hint       string `json:"hint"`        // the foot line when the policy has no contact
	Unblock    string `json:"unblock"`     // the unblock link's text
}

// DefaultLanguage is the language used when neither the request nor the policy
// names a shipped one.
const DefaultLanguage = "en"

// blockTexts parses the embedded translations, keyed by language code.
func blockTexts() (map[string]*BlockText, error) {
	entries, err := blockLangFS.ReadDir("blockpage")
	if err != nil {
		return nil, err
	}
	texts := make(map[string]*BlockText, len(entries))
	for _, e := range entries {
		data, err := blockLangFS.ReadFile(path.Join("blockpage", e.Name()))
		if err != nil {
			return nil, err
		}
		var t BlockText
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&t); err != nil {
			return nil, fmt.Errorf("translation %s: %w", e.Name(), err)
		}
		texts[strings.TrimSuffix(e.Name(), ".json")] = &t
	}
	return texts, nil
}

// BlockLanguages returns the codes of the shipped block page translations, sorted
// ("de", "en", "es", "fr").
func BlockLanguages() []string {
	entries, _ := blockLangFS.ReadDir("blockpage")
	var langs []string
	for _, e := range entries {
		if name, ok := strings.CutSuffix(e.Name(), ".json"); ok {
			langs = append(langs, name)
		}
	}
	sort.Strings(langs)
	return langs
}

// negotiate picks the language for an Accept-Language header value among have:
// the ranges in decreasing quality (ties in header order; q=0 excluded), each
// matching a language exactly or by its primary subtag ("de-CH" matches "de"),
// "*" matching the first fallback; else the first fallback that is shipped, else
// DefaultLanguage.
func negotiate(accept string, have map[string]*BlockText, fallback []string) string {
	first := DefaultLanguage
	for _, l := range fallback {
		if _, ok := have[l]; ok {
			first = l
			break
		}
	}
	type rng struct {
		tag string
		q   float64
	}
	var ranges []rng
	for part := range strings.SplitSeq(accept, ",") {
		tag, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		tag = strings.ToLower(strings.TrimSpace(tag))
		if tag == "" {
			continue
		}
		q := 1.0
		for p := range strings.SplitSeq(params, ";") {
			k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
			if ok && strings.EqualFold(strings.TrimSpace(k), "q") {
				f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
				if err != nil || f < 0 || f > 1 {
					f = 0
				}
				q = f
			}
		}
		if q > 0 {
			ranges = append(ranges, rng{tag, q})
		}
		if len(ranges) == 32 { // a header is a few ranges; ignore the rest of a huge one
			break
		}
	}
	slices.SortStableFunc(ranges, func(a, b rng) int {
		switch {
		case a.q > b.q:
			return -1
		case a.q < b.q:
			return 1
		}
		return 0
	})
	for _, r := range ranges {
		if r.tag == "*" {
			return first
		}
		if _, ok := have[r.tag]; ok {
			return r.tag
		}
		primary, _, _ := strings.Cut(r.tag, "-")
		if _, ok := have[primary]; ok {
			return primary
		}
	}
	return first
}
