package policy

import (
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// selects reports whether the label selector sel matches an object with the
// given labels. It implements metav1.LabelSelector:
//
//	"matchLabels is a map of {key,value} pairs. A single {key,value} in the
//	matchLabels map is equivalent to an element of matchExpressions, whose
//	key field is "key", the operator is "In", and the values array contains
//	only "value". The requirements are ANDed."
//	"An empty label selector matches all objects. A null label selector
//	matches no objects."
//
// A requirement with an unknown operator matches nothing; Validate rejects
// it before it gets here.
func selects(sel *metav1.LabelSelector, labels map[string]string) bool {
	if sel == nil {
		return false
	}
	for k, v := range sel.MatchLabels {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	for _, r := range sel.MatchExpressions {
		if !requirementMatches(r, labels) {
			return false
		}
	}
	return true
}

// requirementMatches implements one metav1.LabelSelectorRequirement:
//
//	"operator represents a key's relationship to a set of values. Valid
//	operators are In, NotIn, Exists and DoesNotExist."
//
// As in Kubernetes label selectors, NotIn also matches objects that do not
// have the key at all.
func requirementMatches(r metav1.LabelSelectorRequirement, labels map[string]string) bool {
	v, has := labels[r.Key]
	switch r.Operator {
	case metav1.LabelSelectorOpIn:
		return has && slices.Contains(r.Values, v)
	case metav1.LabelSelectorOpNotIn:
		return !has || !slices.Contains(r.Values, v)
	case metav1.LabelSelectorOpExists:
		return has
	case metav1.LabelSelectorOpDoesNotExist:
		return !has
	default:
		return false
	}
}
