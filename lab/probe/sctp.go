package probe

import "errors"

// ErrSCTPUnsupported is the cause reported when the kernel has no SCTP.
var ErrSCTPUnsupported = errors.New("protocol not supported by this kernel")
