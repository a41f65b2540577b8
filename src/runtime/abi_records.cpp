#include "runtime/abi_records.h"

namespace nantrace {

bool abi_tensor_supported(const nt_tensor& t) {
  return t.dtype >= NT_DTYPE_F16 && t.dtype <= NT_DTYPE_F64 && t.ndim >= 0 && t.ndim <= kMaxScanDims;
}

CheckRecord check_record_from_abi(const nt_site& site, const nt_tensor& t) {
  CheckRecord rec;
  rec.site.phase = static_cast<Phase>(site.phase);
  rec.site.role = static_cast<Role>(site.role);
  if (site.module_path) rec.site.module_path = site.module_path;
  if (site.module_type) rec.site.module_type = site.module_type;
  if (site.op) rec.site.op = site.op;
  if (site.tensor_name) rec.site.tensor_name = site.tensor_name;
  rec.dtype = static_cast<DType>(t.dtype);
  rec.device = t.device_type == NT_DEVICE_CUDA ? Device::CUDA : Device::CPU;
  rec.device_index = t.device_index;
  rec.shape.assign(t.sizes, t.sizes + (t.sizes ? t.ndim : 0));
  return rec;
}

TensorView tensor_view_from_abi(const nt_tensor& t) {
  TensorView view;
  view.data = t.data;
  view.dtype = static_cast<DType>(t.dtype);
  view.ndim = t.ndim;
  view.sizes = t.sizes;
  view.strides = t.strides;
  return view;
}

}  // namespace nantrace
