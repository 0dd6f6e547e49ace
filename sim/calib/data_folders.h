// The measurement folders of validate/data/: <gpu>/ holds a GPU's single-GPU
// suites, <gpu>-x<N>/ its N-GPU NCCL suites (tools/measure.sh). Both belong to
// the GPU id <gpu> (the hardware/gpus/<gpu>.json description).
#pragma once

#include <map>
#include <string>
#include <vector>

namespace moesim::calib {

// "h200-sxm-x2" -> "h200-sxm"; "h200-sxm" -> "h200-sxm".
std::string gpu_of_folder(const std::string& folder_name);

// GPU id -> its folders (sorted), for every subfolder of `data_root` holding at least one *.jsonl file.
std::map<std::string, std::vector<std::string>> discover_data(const std::string& data_root);

// The folders of one GPU given its main folder (validate/data/h200-sxm): itself and its -x<N> siblings.
std::vector<std::string> folders_of(const std::string& gpu_folder);

}  // namespace moesim::calib
