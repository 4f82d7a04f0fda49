# -*- coding: utf-8 -*-
# Copyright: credops.rotation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The inventory model of ``rotation_credentials`` (the contract, /shared/spec/inventory.md).

- ``fields``: which fields each block has, declared once (argspec-shaped, the issuer and
  store parts taken from their argument specs), read by preflight and by ``schema``;
- ``model``: the inventory's hosts and groups, templated values fetched once, small helpers;
- ``validation``: preflight, every problem at once, named by credential and field path;
- ``normalize``: a record with the contract's defaults filled in;
- ``depmap``: the dependency map (credential -> consumers -> hosts, and back);
- ``drift``: what discover_consumers found on the hosts against what the map lists;
- ``schema``: the JSON Schema of ``rotation_credentials`` for editors.

Pure Python, no I/O: modules, filters, the lookup and the benchmark run the same code.
"""
