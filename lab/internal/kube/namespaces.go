package kube

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
)

// privileged lets hostNetwork pods into a namespace where Pod Security
// admission enforces a stricter level by default.
var privileged = map[string]string{"pod-security.kubernetes.io/enforce": "privileged"}

// EnsureOwnedNamespace creates namespace name with owner (which must hold
// OwnedLabel=true) and the privileged Pod Security level. A namespace of that
// name that carries owner's labels is reused; one that does not is someone
// else's, and is an error.
func EnsureOwnedNamespace(ctx context.Context, c kubernetes.Interface, name string, owner map[string]string) error {
	if owner[OwnedLabel] != "true" {
		return fmt.Errorf("namespace %s: owner labels %v lack %s=true", name, owner, OwnedLabel)
	}
	l := maps.Clone(owner)
	maps.Copy(l, privileged)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: l}}
	_, err := c.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		cur, gerr := c.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
		if gerr != nil {
			return fmt.Errorf("namespace %s: %w", name, gerr)
		}
		if !labels.SelectorFromSet(owner).Matches(labels.Set(cur.Labels)) {
			return fmt.Errorf("namespace %s exists and is not cnilab's (labels %v): it is left alone; choose another lab name", name, cur.Labels)
		}
		if cur.DeletionTimestamp != nil {
			return fmt.Errorf("namespace %s is still being deleted: try again when it is gone", name)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("create namespace %s: %w", name, err)
	}
	return nil
}

// OwnedNamespaces lists, sorted, the namespaces whose labels include
// selector's, which must hold OwnedLabel=true.
func OwnedNamespaces(ctx context.Context, c kubernetes.Interface, selector map[string]string) ([]corev1.Namespace, error) {
	if selector[OwnedLabel] != "true" {
		return nil, fmt.Errorf("selector %v lacks %s=true: refusing to look for namespaces cnilab did not make", selector, OwnedLabel)
	}
	l, err := c.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: labels.SelectorFromSet(selector).String()})
	if err != nil {
		return nil, fmt.Errorf("list namespaces: %w", err)
	}
	// Checked again here: a selector is only as good as the server that
	// applies it.
	var out []corev1.Namespace
	for _, ns := range l.Items {
		if labels.SelectorFromSet(selector).Matches(labels.Set(ns.Labels)) {
			out = append(out, ns)
		}
	}
	slices.SortFunc(out, func(a, b corev1.Namespace) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// DeleteOwnedNamespaces deletes the namespaces OwnedNamespaces(selector)
// finds and waits (up to timeout) until they are gone; it returns their
// names.
func DeleteOwnedNamespaces(ctx context.Context, c kubernetes.Interface, selector map[string]string, timeout time.Duration) ([]string, error) {
	nss, err := OwnedNamespaces(ctx, c, selector)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, ns := range nss {
		names = append(names, ns.Name)
		uid := ns.UID
		err := c.CoreV1().Namespaces().Delete(ctx, ns.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
		if err != nil && !apierrors.IsNotFound(err) {
			return names, fmt.Errorf("delete namespace %s: %w", ns.Name, err)
		}
	}
	for _, name := range names {
		err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
			_, err := c.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
			return apierrors.IsNotFound(err), nil
		})
		if err != nil {
			return names, fmt.Errorf("namespace %s still exists after %s", name, timeout)
		}
	}
	return names, nil
}
