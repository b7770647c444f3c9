package cni

import (
	"context"
	"fmt"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// The lab's own ClusterRoles and bindings for the agents it runs. They are
// not named like those of manifests/ (cnilab-agent, flannel): applying the
// manifests to a lab (cnilab install) must not take the lab's agents'
// permissions away.
const (
	labAgentRBAC   = "cnilab-lab-agent"
	labFlannelRBAC = "cnilab-lab-flannel"
)

// bindUser creates ClusterRole name with rules, bound to user, as a CNI's
// manifest would for its ServiceAccount. Existing objects are kept.
func bindUser(ctx context.Context, c kubernetes.Interface, name, user string, rules []rbacv1.PolicyRule) error {
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: rules}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: name},
		Subjects:   []rbacv1.Subject{{APIGroup: "rbac.authorization.k8s.io", Kind: "User", Name: user}},
	}
	if _, err := c.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("rbac %s: %w", name, err)
	}
	if _, err := c.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("rbac %s: %w", name, err)
	}
	return nil
}
