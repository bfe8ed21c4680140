# Benchmark systems for crebuild (bench/run.sh).  No inputs, no nixpkgs.
#
#   nixosConfigurations.nN    a system whose closure has exactly N store paths:
#                             the toplevel plus N-1 leaves, each leaf a
#                             directory holding one 4 KiB file of random bytes
#   nixosConfigurations.big   the toplevel plus COUNT leaves of MIB MiB each
#
# Sizes come from ./params.nix if present (bench/run.sh writes it), else
# from the defaults below.  Leaves are the outputs of multi-output
# derivations (100 outputs each), so building 10 000 of them takes seconds,
# yet every leaf is an ordinary input-addressed store path with a deriver.
{
  outputs = { self }:
    let
      defaults = { closures = [ 1000 2000 10000 ]; bigCount = 4; bigMiB = 128; };
      params = defaults // (if builtins.pathExists ./params.nix then import ./params.nix else { });
      lib = import ./lib.nix;
      small = map (n: { name = "n${toString n}"; value = lib.mkSystem "n${toString n}" (lib.smallLeaves n (n - 1)); })
        params.closures;
      big = { name = "big"; value = lib.mkSystem "big" (lib.bigLeaves params.bigCount params.bigMiB); };
    in
    {
      nixosConfigurations = builtins.listToAttrs (small ++ [ big ]);
    };
}
