# Test flake for crebuild integration tests.  No inputs, no nixpkgs.
# nixosConfigurations.<name>.config.system.build.{toplevel,vm,vmWithBootLoader,images.*}
# Optional file ./salt: its content is mixed into every toplevel (write a new
# value to get new system store paths without changing anything else).
{
  description = "crebuild integration-test systems";

  outputs = { self }:
    let
      salt = if builtins.pathExists ./salt then builtins.readFile ./salt else "";
    in
    {
      nixosConfigurations = import ./configs.nix { inherit salt; };
      lib = import ./lib.nix { inherit salt; };
    };
}
