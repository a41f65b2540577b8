// Sum of squares of a tensor view, accumulated in double, in one pass over its elements: the
// L2 norm of an optimizer's gradients, and whether they are all finite (a NaN or Inf element
// makes the sum non-finite; the square of a finite float32 or half value cannot overflow a
// double, so a finite sum means every element is finite). float64 squares can overflow: the
// caller tells overflow from NaN/Inf with scan() when the sum is not finite.
#pragma once

#include "core/scanner.h"

namespace nantrace {

// NaN when the view cannot be read (scan_view_is_scannable false).
double sum_of_squares(const TensorView& view);

}  // namespace nantrace
