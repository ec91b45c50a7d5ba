return BabyPpo.Cli.Cli.Run(args, Console.Out, Console.Error);
