// Package v20170312 is a stand-in for the TencentCloud VPC API client
// (github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/vpc/v20170312).
//
// The real module is not served by the Go module proxy, so cnilab builds flanneld
// against this stand-in. It declares exactly the identifiers that flannel's
// pkg/backend/tencentvpc refers to, written for cnilab (no SDK code). Constructing
// a client or a request works; every API call returns ErrUnavailable. Flannel's
// "tencent-vpc" backend therefore cannot work in this build; every other backend
// (vxlan in particular) is unaffected.
package v20170312

import "errors"

// ErrUnavailable is returned by every API call.
var ErrUnavailable = errors.New("the TencentCloud VPC SDK is not available in cnilab's flanneld build " +
	"(github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/vpc is replaced by a stand-in); " +
	"the tencent-vpc backend cannot be used")

// Client stands in for the VPC API client. It holds no credentials and talks to
// nothing.
type Client struct {
	region string
}

// NewClientWithSecretId returns a client that makes no calls: every method
// returns ErrUnavailable. Creating it makes no call, so it does not fail.
func NewClientWithSecretId(secretId, secretKey, region string) (*Client, error) {
	return &Client{region: region}, nil
}

// Filter is a name/values filter of a Describe* request.
type Filter struct {
	Name   *string   `json:"Name,omitempty"`
	Values []*string `json:"Values,omitempty"`
}

// Route is one entry of a route table.
type Route struct {
	DestinationCidrBlock *string `json:"DestinationCidrBlock,omitempty"`
	GatewayType          *string `json:"GatewayType,omitempty"`
	GatewayId            *string `json:"GatewayId,omitempty"`
	RouteId              *uint64 `json:"RouteId,omitempty"`
	RouteType            *string `json:"RouteType,omitempty"`
	Enabled              *bool   `json:"Enabled,omitempty"`
}

// RouteTable is a VPC route table.
type RouteTable struct {
	RouteTableId *string  `json:"RouteTableId,omitempty"`
	RouteSet     []*Route `json:"RouteSet,omitempty"`
}

// DescribeRouteTablesRequest asks for the route tables matching Filters.
type DescribeRouteTablesRequest struct {
	Filters []*Filter `json:"Filters,omitempty"`
}

// NewDescribeRouteTablesRequest returns an empty request.
func NewDescribeRouteTablesRequest() *DescribeRouteTablesRequest {
	return &DescribeRouteTablesRequest{}
}

// DescribeRouteTablesResponseParams is the payload of a DescribeRouteTablesResponse.
type DescribeRouteTablesResponseParams struct {
	RouteTableSet []*RouteTable `json:"RouteTableSet,omitempty"`
}

// DescribeRouteTablesResponse is the answer to a DescribeRouteTablesRequest.
type DescribeRouteTablesResponse struct {
	Response *DescribeRouteTablesResponseParams `json:"Response"`
}

// DescribeRouteTables always fails with ErrUnavailable.
func (c *Client) DescribeRouteTables(request *DescribeRouteTablesRequest) (*DescribeRouteTablesResponse, error) {
	return nil, ErrUnavailable
}

// CreateRoutesRequest asks to add Routes to the route table RouteTableId.
type CreateRoutesRequest struct {
	RouteTableId *string  `json:"RouteTableId,omitempty"`
	Routes       []*Route `json:"Routes,omitempty"`
}

// NewCreateRoutesRequest returns an empty request.
func NewCreateRoutesRequest() *CreateRoutesRequest {
	return &CreateRoutesRequest{}
}

// CreateRoutesResponse is the answer to a CreateRoutesRequest.
type CreateRoutesResponse struct{}

// CreateRoutes always fails with ErrUnavailable.
func (c *Client) CreateRoutes(request *CreateRoutesRequest) (*CreateRoutesResponse, error) {
	return nil, ErrUnavailable
}

// DeleteRoutesRequest asks to remove Routes from the route table RouteTableId.
type DeleteRoutesRequest struct {
	RouteTableId *string  `json:"RouteTableId,omitempty"`
	Routes       []*Route `json:"Routes,omitempty"`
}

// NewDeleteRoutesRequest returns an empty request.
func NewDeleteRoutesRequest() *DeleteRoutesRequest {
	return &DeleteRoutesRequest{}
}

// DeleteRoutesResponse is the answer to a DeleteRoutesRequest.
type DeleteRoutesResponse struct{}

// DeleteRoutes always fails with ErrUnavailable.
func (c *Client) DeleteRoutes(request *DeleteRoutesRequest) (*DeleteRoutesResponse, error) {
	return nil, ErrUnavailable
}
