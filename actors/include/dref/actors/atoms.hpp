#pragma once

#include "caf/atom.hpp"

namespace dref {

// Atoms of the driver/worker protocol (at most 10 characters each).
using submit_atom = caf::atom_constant<caf::atom("dref_sub")>;
using done_atom = caf::atom_constant<caf::atom("dref_done")>;
using flush_atom = caf::atom_constant<caf::atom("dref_flush")>;
using fetch_atom = caf::atom_constant<caf::atom("dref_fetch")>;
using free_atom = caf::atom_constant<caf::atom("dref_free")>;
using stats_atom = caf::atom_constant<caf::atom("dref_stats")>;
using register_atom = caf::atom_constant<caf::atom("dref_reg")>;
using get_atom = caf::atom_constant<caf::atom("dref_get")>;
using check_atom = caf::atom_constant<caf::atom("dref_check")>;
using memory_atom = caf::atom_constant<caf::atom("dref_mem")>;
using borrow_atom = caf::atom_constant<caf::atom("dref_borr")>;
using release_atom = caf::atom_constant<caf::atom("dref_rel")>;
using release_hold_atom = caf::atom_constant<caf::atom("dref_rhold")>;
using echo_atom = caf::atom_constant<caf::atom("dref_echo")>;
using ckpt_atom = caf::atom_constant<caf::atom("dref_ckpt")>;
using kept_atom = caf::atom_constant<caf::atom("dref_kept")>;
using ready_atom = caf::atom_constant<caf::atom("dref_ready")>;
using peer_atom = caf::atom_constant<caf::atom("dref_peer")>;
using tick_atom = caf::atom_constant<caf::atom("dref_tick")>;
using gone_atom = caf::atom_constant<caf::atom("dref_gone")>;

} // namespace dref
