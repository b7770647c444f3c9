// Local stand-in for github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/vpc,
// which the Go module proxy does not serve. It declares only what flanneld's
// tencentvpc backend refers to; every API call returns an error. See ../README.md.
module github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/vpc

go 1.26.0
